"""Server-rendered pages: log in, list your projects, manage a project's files.

The views are thin on purpose. The file manager renders a shell only; its script
(``static/racelab/file_manager.js``) reads and writes everything through the
import API with the session, so the page shows exactly what an API client sees
and knows nothing the API does not say.
"""
from django import forms
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles.views import serve as serve_static
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, re_path
from rest_framework.authtoken.models import Token

from label_studio.projects.models import Project


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["title"]


class LoginView(auth_views.LoginView):
    """Log in by username and password, or by API token with ``/login?token=<key>``.

    The token link is what ``racelab serve`` prints: one click logs the browser
    in as the token's user. A wrong token logs nobody in and shows the form with
    an error; the token never stays in the address bar after a good one.
    """

    template_name = "racelab/login.html"
    redirect_authenticated_user = True

    def get(self, request, *args, **kwargs):
        key = request.GET.get("token")
        if key is None:
            return super().get(request, *args, **kwargs)
        token = Token.objects.select_related("user").filter(key=key, user__is_active=True).first()
        if token is None:
            context = self.get_context_data(token_error="That token is not valid. Log in with your password, "
                                                        "or copy the link `racelab serve` printed again.")
            return self.render_to_response(context, status=403)
        login(request, token.user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(self.get_success_url())


@login_required
def project_list(request):
    """List the user's projects with their task numbers; create one on POST."""
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = form.save(commit=False)
        project.created_by = request.user
        project.save()
        return redirect("file-manager", pk=project.pk)
    projects = Project.objects.for_user(request.user).with_task_number()
    return render(request, "racelab/projects.html", {"projects": projects, "form": form})


@login_required
def file_manager(request, pk):
    """Render the file manager of project ``pk``; 404 unless the user owns it (no existence leak)."""
    project = get_object_or_404(Project.objects.for_user(request.user), pk=pk)
    return render(request, "racelab/file_manager.html", {"project": project})


urlpatterns = [
    path("login", LoginView.as_view(), name="login"),
    path("logout", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("", project_list, name="project-pages"),
    path("projects/<int:pk>/files", file_manager, name="file-manager"),
    # gunicorn serves no static files and the app ships only a few, so it serves its own,
    # found by the staticfiles finders (no collectstatic step).
    re_path(r"^static/(?P<path>.+)$", serve_static, {"insecure": True}),
]
