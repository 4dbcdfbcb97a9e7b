# The file-upload table as it was before status tracking (see 0002-0004).

import django.db.models.deletion
import label_studio.data_import.models
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('projects', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ProjectImport',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('created', 'Created'), ('in_progress', 'In progress'), ('completed', 'Completed'), ('failed', 'Failed')], db_index=True, default='created', max_length=20)),
                ('job_id', models.CharField(blank=True, default='', max_length=64)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('tasks', models.JSONField(blank=True, help_text='Tasks posted as a JSON body, imported by the job.', null=True)),
                ('file_upload_ids', models.JSONField(default=list)),
                ('commit_to_project', models.BooleanField(default=True)),
                ('task_count', models.PositiveIntegerField(default=0)),
                ('annotation_count', models.PositiveIntegerField(default=0)),
                ('prediction_count', models.PositiveIntegerField(default=0)),
                ('duration', models.FloatField(blank=True, help_text='Seconds from creation to a final status.', null=True)),
                ('found_formats', models.JSONField(default=dict)),
                ('data_columns', models.JSONField(default=list)),
                ('could_be_tasks_list', models.BooleanField(default=False)),
                ('error', models.TextField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='imports', to='projects.project')),
                ('user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.CreateModel(
            name='FileUpload',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('file', models.FileField(max_length=500, upload_to=label_studio.data_import.models.upload_path)),
                ('original_name', models.CharField(blank=True, default='', max_length=255)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('is_parent_document', models.BooleanField(default=False)),
                ('page_number', models.PositiveIntegerField(blank=True, null=True)),
                ('pages_total', models.PositiveIntegerField(default=0)),
                ('pages_done', models.PositiveIntegerField(default=0)),
                ('parent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='pages', to='data_import.fileupload')),
                ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='file_uploads', to='projects.project')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='file_uploads', to=settings.AUTH_USER_MODEL)),
                ('project_import', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='file_uploads', to='data_import.projectimport')),
            ],
            options={
                'ordering': ['id'],
            },
        ),
    ]
