"""The staff roles as groups, each with the permissions it needs and no more (docs/admin.md,
"Who can see what"). Other features add their own named permissions to these groups in their
own migrations (get_or_create the group by name)."""
from django.contrib.auth.management import create_permissions
from django.db import migrations

CONTENT_EDITORS = "Content editors"
SUBSCRIBER_CARE = "Subscriber care"
AUDITORS = "Auditors"

ROLES = {
    # Articles, series, steps, previews with a sample reader, journeys, test-send to themselves.
    # Never a subscriber's address, name or stage.
    CONTENT_EDITORS: [
        "content.view_article", "content.add_article", "content.change_article",
        "content.view_articleversion",
        "nurture.view_series", "nurture.add_series", "nurture.change_series", "nurture.delete_series",
        "nurture.view_step", "nurture.add_step", "nurture.change_step", "nurture.delete_step",
        "nurture.view_steparticle", "nurture.add_steparticle", "nurture.change_steparticle", "nurture.delete_steparticle",
        "nurture.view_stepfigures",
        "nurture.preview_emails",
        "nurture.view_results",  # aggregates only (issue 15)
    ],
    # Subscribers, deliveries, suppressions, consent records, stage changes, pause/resume, requeue,
    # erasure, previews as a real subscriber, the sending overview.
    SUBSCRIBER_CARE: [
        "nurture.view_subscriber", "nurture.change_subscriber", "nurture.delete_subscriber",
        "nurture.view_consentrecord",
        "nurture.view_delivery", "nurture.change_delivery",
        "nurture.view_suppression", "nurture.add_suppression", "nurture.change_suppression", "nurture.delete_suppression",
        "nurture.view_providerevent",
        "nurture.view_series", "nurture.view_step", "nurture.view_stepfigures",
        "nurture.preview_emails", "nurture.preview_as_subscriber", "nurture.view_overview",
    ],
    # Read-only: the audit trail (and its CSV), the sending overview's counts, login lockouts.
    AUDITORS: [
        "nurture.view_auditentry", "nurture.export_auditentry", "nurture.view_overview", "nurture.view_results",
        "axes.view_accessattempt", "axes.view_accesslog", "axes.view_accessfailurelog",
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _created = Group.objects.get_or_create(name=name)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.add(*wanted)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("nurture", "0010_issue9_audit"),
        ("content", "0001_initial"),
        ("axes", "0010_accessattemptexpiration"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
