"""Claims carry a token that fences their commit (fix R12) and name the RQ worker holding them."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('data_import', '0005_import_requests_and_dispatch'),
    ]

    operations = [
        migrations.AddField(
            model_name='fileupload',
            name='claim_token',
            field=models.UUIDField(blank=True, help_text="The current claim's token: only it may commit the tasks.", null=True),
        ),
        migrations.AddField(
            model_name='fileupload',
            name='claimed_by',
            field=models.CharField(blank=True, default='', help_text='The RQ worker and job holding the claim, for the reconciler to see it is dead.', max_length=200),
        ),
    ]
