"""The user's side of the sandbox's OAuth2 pages, for tests (standard library only).

    oauth.py approve-authorize URL   # a browser: open the authorize page, press Approve, follow
                                     # the redirect to the CLI's local listener
    oauth.py approve-device URL      # open verification_uri?user_code=X and press Approve
    oauth.py token TOKEN_URL SECRET_FILE   # client credentials: print an access token
                                           # (what an `admin.command` would print)
"""

import base64
import html.parser
import sys
import urllib.parse
import urllib.request


class _Form(html.parser.HTMLParser):
    """The first form of a page: its action and hidden fields."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        if tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


def _approve(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        page = r.read().decode()
    form = _Form()
    form.feed(page)
    if form.action is None:
        sys.exit(f"no form on {url}:\n{page}")
    fields = dict(form.fields)
    fields["decision"] = "approve"
    target = urllib.parse.urljoin(url, form.action)
    data = urllib.parse.urlencode(fields).encode()
    # urllib follows the 302/303 to the redirect URI (the CLI's listener) with a GET.
    with urllib.request.urlopen(target, data=data, timeout=60) as r:
        print(r.status, r.geturl().split("?")[0])


def _token(url, secret_file):
    secret = open(secret_file).read().strip()
    basic = base64.b64encode(f"union-sandbox:{urllib.parse.quote_plus(secret)}".encode()).decode()
    req = urllib.request.Request(
        url,
        data=b"grant_type=client_credentials&scope=all",
        headers={"Authorization": f"Basic {basic}"},
    )
    import json

    with urllib.request.urlopen(req, timeout=30) as r:
        print(json.load(r)["access_token"])


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd in ("approve-authorize", "approve-device"):
        _approve(sys.argv[2])
    elif cmd == "token":
        _token(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")
