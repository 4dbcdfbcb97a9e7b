from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "label_studio.projects"
    label = "projects"
