"""
Test harness for charts/hephy-workflow/files/controller/ensure_admin.py, with no pip packages.

    python3 ensure_admin_harness.py path/to/ensure_admin.py users.json

Stubs the parts of Django 2.2 and Django REST framework the script uses (the auth User model and its
manager, transaction.atomic, select_for_update, authtoken's Token) over an in-memory table loaded from
users.json, adds the controller's post_save receiver that gives a new user a token
(teamhephy/controller v2.22.0 rootfs/api/models/__init__.py), runs the script the way Django 2.2's
`manage.py shell -c` does (exec() inside a method), and prints
{"users": [...], "tokens": [...], "saves": N, "output": "..."}.
"""
import contextlib
import hashlib
import io
import json
import sys
import types

sys.dont_write_bytecode = True

USERS = []       # rows of the auth_user table, as dicts
TOKENS = set()   # usernames that have an authtoken Token
STATE = {'in_transaction': False, 'saves': 0}
FIELDS = ('username', 'password', 'is_superuser', 'is_staff', 'is_active')


class TransactionManagementError(Exception):
    pass


def hashed(raw):
    return 'stub_sha256$' + hashlib.sha256(raw.encode()).hexdigest()


class User(object):
    def __init__(self, username='', password='', is_superuser=False, is_staff=False, is_active=True):
        # django.contrib.auth's defaults: not a superuser, not staff, active
        self.username, self.password = username, password
        self.is_superuser, self.is_staff, self.is_active = is_superuser, is_staff, is_active
        self._row = None

    def set_password(self, raw):
        self.password = hashed(raw)

    def check_password(self, raw):
        return self.password == hashed(raw)

    def save(self, update_fields=None):
        STATE['saves'] += 1
        created = self._row is None
        if created:
            if any(row['username'] == self.username for row in USERS):
                raise Exception('IntegrityError: duplicate username ' + self.username)
            self._row = {}
            USERS.append(self._row)
        for field in update_fields or FIELDS:
            self._row[field] = getattr(self, field)
        if created:
            post_save_create_auth_token(self)


class QuerySet(object):
    def __init__(self, rows, for_update=False):
        self.rows, self.for_update = rows, for_update

    def filter(self, **conditions):
        return QuerySet([r for r in self.rows if all(r[k] == v for k, v in conditions.items())], self.for_update)

    def select_for_update(self):
        return QuerySet(self.rows, True)

    def _evaluate(self):
        if self.for_update and not STATE['in_transaction']:
            # Django: "select_for_update cannot be used outside of a transaction."
            raise TransactionManagementError('select_for_update cannot be used outside of a transaction.')
        users = []
        for row in self.rows:
            user = User(**row)
            user._row = row
            users.append(user)
        return users

    def first(self):
        users = self._evaluate()
        return users[0] if users else None

    def exists(self):
        return bool(self._evaluate())


class UserManager(object):
    def filter(self, **conditions):
        return QuerySet(USERS).filter(**conditions)

    def select_for_update(self):
        return QuerySet(USERS, True)


User.objects = UserManager()


class TokenManager(object):
    def create(self, user):
        if user.username in TOKENS:
            raise Exception('IntegrityError: token exists for ' + user.username)
        TOKENS.add(user.username)

    def get_or_create(self, user):
        created = user.username not in TOKENS
        TOKENS.add(user.username)
        return None, created


class Token(object):
    objects = TokenManager()


def post_save_create_auth_token(user):
    Token.objects.create(user=user)


@contextlib.contextmanager
def atomic():
    before = STATE['in_transaction']
    STATE['in_transaction'] = True
    try:
        yield
    finally:
        STATE['in_transaction'] = before


def stub_module(name, **attrs):
    module = types.ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attrs)
    sys.modules[name] = module


for package in ('django', 'django.contrib', 'django.contrib.auth', 'rest_framework', 'rest_framework.authtoken'):
    stub_module(package)
stub_module('django.contrib.auth.models', User=User)
stub_module('django.db', transaction=types.SimpleNamespace(atomic=atomic))
stub_module('rest_framework.authtoken.models', Token=Token)


class ShellCommand(object):
    """django/core/management/commands/shell.py at Django 2.2: `exec(options['command'])` in handle()."""

    def handle(self, command):
        exec(command)


def main(script, users_file):
    with open(users_file) as f:
        for row in json.load(f):
            user = User(**{k: v for k, v in row.items() if k != 'token'})
            user._row = dict((field, getattr(user, field)) for field in FIELDS)
            USERS.append(user._row)
            if row.get('token'):
                TOKENS.add(user.username)
    with open(script) as f:
        command = f.read()
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        ShellCommand().handle(command)
    print(json.dumps({'users': USERS, 'tokens': sorted(TOKENS), 'saves': STATE['saves'], 'output': output.getvalue()}))
    return 0


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: python3 ensure_admin_harness.py path/to/ensure_admin.py users.json')
    sys.exit(main(sys.argv[1], sys.argv[2]))
