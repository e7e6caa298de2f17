"""The results page's permission for the roles that see aggregates: "Content editors" and
"Auditors" (the groups belong to issue 9's roles; each is got or created by name here, so this
migration stands on its own). "Subscriber care" does not need it."""
from django.contrib.auth.management import create_permissions
from django.db import migrations

RESULTS_GROUPS = ("Content editors", "Auditors")


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations; the groups need this one now.
    app_config = apps.get_app_config("nurture")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="nurture", codename="view_results")
    for name in RESULTS_GROUPS:
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for permission in Permission.objects.filter(content_type__app_label="nurture", codename="view_results"):
        for group in apps.get_model("auth", "Group").objects.filter(name__in=RESULTS_GROUPS):
            group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("nurture", "0008_issue15_results"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
