"""Server-rendered pages: log in (password or one-time link), list your projects, manage a project's files.

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
from django.views.generic import TemplateView
from rest_framework.exceptions import Throttled

from label_studio.core import login_links
from label_studio.core.throttling import FailedAuthenticationThrottle
from label_studio.projects.models import Project


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["title"]


class LoginView(auth_views.LoginView):
    """Log in by username and password; a client that failed too often gets 429 until its window moves on.

    ``racelab serve`` sets no password: it prints a one-time link (:class:`LoginLinkView`).
    ``/login?token=…`` logs nobody in any more: a link that does would let another site log
    your browser in as someone else.
    """

    template_name = "racelab/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        self.throttle = FailedAuthenticationThrottle()
        try:
            self.throttle.check(request)
        except Throttled as exc:
            form = self.get_form()
            return self.render_to_response(self.get_context_data(form=form, login_error=exc.detail), status=429,
                                           headers={"Retry-After": str(exc.wait)})
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        self.throttle.record_failure(self.request)
        return super().form_invalid(form)


class LoginLinkView(auth_views.RedirectURLMixin, TemplateView):
    """Show a one-time login link's "Log in" button on GET; log in on its POST (CSRF-checked).

    GET uses nothing up, so a link previewed by a chat app or opened twice still works once.
    An invalid link (forged, expired, used) answers 403 with what to do instead.
    """

    template_name = "racelab/login_link.html"
    next_page = "project-pages"

    def get(self, request, key):
        try:
            user = login_links.peek(key)
        except login_links.InvalidLink as exc:
            return self._refuse(exc)
        return self.render_to_response({"link_user": user, "next": self.get_redirect_url()})

    def post(self, request, key):
        try:
            user = login_links.redeem(key)
        except login_links.InvalidLink as exc:
            return self._refuse(exc)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(self.get_success_url())

    def _refuse(self, exc):
        return self.render_to_response({"link_error": str(exc), "new_link": login_links.NEW_LINK}, status=403)


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
    path("login/link/<str:key>", LoginLinkView.as_view(), name="login-link"),
    path("logout", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("", project_list, name="project-pages"),
    path("projects/<int:pk>/files", file_manager, name="file-manager"),
    # gunicorn serves no static files and the app ships only a few, so it serves its own,
    # found by the staticfiles finders (no collectstatic step).
    re_path(r"^static/(?P<path>.+)$", serve_static, {"insecure": True}),
]
