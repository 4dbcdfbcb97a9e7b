from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "label_studio.tasks"
    label = "tasks"
