from django.apps import AppConfig


class DataImportConfig(AppConfig):
    name = "label_studio.data_import"
    label = "data_import"
