"""The "Subscriber care" group may export everything held about a subscriber (issue 14)."""
from django.db import migrations


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="nurture", codename="export_subscriber")
    group, _created = Group.objects.get_or_create(name="Subscriber care")
    group.permissions.add(permission)


class Migration(migrations.Migration):
    dependencies = [("nurture", "0012_issue14_care"), ("auth", "0012_alter_user_first_name_max_length"), ("contenttypes", "0002_remove_content_type_name")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
