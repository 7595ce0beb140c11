# Makes sure the stack's admin exists, as a superuser with the stack's password, and leaves every other
# user as it is. Run by start.sh as `manage.py shell -c`, which Django 2.2 (the controller's) runs with
# exec() inside a method (django/core/management/commands/shell.py), so this defines no function and
# no comprehension: neither would see the names defined here. The credentials are files of the Secret
# the program creates, in the directory ADMIN_CREDENTIALS_DIR names.
import os

from django.contrib.auth.models import User
from django.db import transaction
from rest_framework.authtoken.models import Token

with open(os.path.join(os.environ["ADMIN_CREDENTIALS_DIR"], "username")) as username_file:
    username = username_file.read().strip()
with open(os.path.join(os.environ["ADMIN_CREDENTIALS_DIR"], "password")) as password_file:
    password = password_file.read().strip()
if not username or not password:
    raise SystemExit("hephy-doks: the admin's username or password is empty")

with transaction.atomic():
    admin = User.objects.select_for_update().filter(username=username).first()
    created = admin is None
    if created:
        admin = User(username=username)
    changed = []
    if not (admin.is_superuser and admin.is_staff and admin.is_active):
        # What `deis perms:create --admin` grants (api/views.py AdminPermsViewSet), and an active account.
        admin.is_superuser = admin.is_staff = admin.is_active = True
        changed.append("superuser")
    if created or not admin.check_password(password):
        admin.set_password(password)
        changed.append("password")
    if changed:
        # A new user gets its API token from the controller's post_save receiver (api/models/__init__.py).
        admin.save()
    # Regenerating a token (`deis auth:regenerate`) fails for a user without one (api/views.py).
    Token.objects.get_or_create(user=admin)
print("hephy-doks: admin %s %s" % (username, "created" if created else ("updated: " + ", ".join(changed)) if changed else "present"))
