"""URLs: upstream Label Studio's API paths, each with or without a trailing slash."""
from django.urls import re_path

from label_studio.core import pages
from label_studio.core.health import ImportFlowHealthAPI
from label_studio.data_import.api import FileUploadListAPI, ImportAPI, ProjectImportAPI
from label_studio.projects.api import ProjectDetailAPI, ProjectListAPI
from label_studio.tasks.api import ProjectTaskListAPI, TaskListAPI


def api(path, view, name):
    """Route ``/api/<path>`` with an optional trailing slash."""
    return re_path(rf"^api/{path}/?$", view.as_view(), name=name)


urlpatterns = [
    api("projects", ProjectListAPI, "project-list"),
    api(r"projects/(?P<pk>\d+)", ProjectDetailAPI, "project-detail"),
    api(r"projects/(?P<pk>\d+)/import", ImportAPI, "project-import"),
    api(r"projects/(?P<pk>\d+)/imports/(?P<import_pk>\d+)", ProjectImportAPI, "project-import-detail"),
    api(r"projects/(?P<pk>\d+)/file-uploads", FileUploadListAPI, "file-upload-list"),
    api(r"projects/(?P<pk>\d+)/tasks", ProjectTaskListAPI, "project-task-list"),
    api("tasks", TaskListAPI, "task-list"),
    api("health/import-flow", ImportFlowHealthAPI, "health-import-flow"),
]

# The server-rendered pages: login, projects, the file manager (see core.pages).
urlpatterns += pages.urlpatterns
