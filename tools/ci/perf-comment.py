#!/usr/bin/python3
"""Posts the perf gate's report as a pull-request comment, or updates the one it posted before.

The comment is found by the marker perf-gate.py puts on its first line, so every run of the
job edits the same comment instead of adding one. Never fails the job: where the token cannot
write (a pull request from a fork gets a read-only token) it says so and exits 0.

Usage: perf-comment.py --body FILE
  GITHUB_TOKEN, GITHUB_REPOSITORY (owner/name), GITHUB_EVENT_PATH (the pull_request event),
  GITHUB_API_URL (default https://api.github.com) come from the Actions environment.
Exit status: 0 posted, updated or skipped with a message; 2 bad input (no body file, no event).
"""
import argparse
import json
import os
import sys
import urllib.error
import urllib.request

MARKER = "<!-- coroserve-perf-gate -->"


def log(msg):
    print(f"perf-comment: {msg}", flush=True)


class Api:
    def __init__(self, base, repo, token):
        self.base, self.repo, self.token = base.rstrip("/"), repo, token

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "Content-Type": "application/json",
            "User-Agent": "coroserve-perf-comment",
        })
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read().decode()
            return json.loads(text) if text else None

    def own_comment(self, number):
        """The id of the comment carrying MARKER, looking through every page of comments."""
        page = 1
        while True:
            comments = self.call("GET", f"/repos/{self.repo}/issues/{number}/comments?per_page=100&page={page}")
            for c in comments or []:
                if MARKER in (c.get("body") or ""):
                    return c["id"]
            if not comments or len(comments) < 100:
                return None
            page += 1


def pull_request(event_path):
    try:
        with open(event_path, encoding="utf-8") as f:
            event = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read the event {event_path}: {e}")
    pr = event.get("pull_request")
    if not isinstance(pr, dict) or "number" not in pr:
        raise ValueError(f"{event_path} is not a pull_request event")
    return pr


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--body", required=True, help="the Markdown to post (perf-gate.py --comment FILE)")
    args = p.parse_args(argv)
    try:
        with open(args.body, encoding="utf-8") as f:
            body = f.read()
    except OSError as e:
        print(f"perf-comment: error: cannot read the body: {e}", file=sys.stderr)
        return 2
    if MARKER not in body:
        body = MARKER + "\n" + body

    token, repo = os.environ.get("GITHUB_TOKEN"), os.environ.get("GITHUB_REPOSITORY")
    event_path = os.environ.get("GITHUB_EVENT_PATH")
    if not event_path:
        print("perf-comment: error: GITHUB_EVENT_PATH is not set (run it in a pull_request job)", file=sys.stderr)
        return 2
    try:
        pr = pull_request(event_path)
    except ValueError as e:
        print(f"perf-comment: error: {e}", file=sys.stderr)
        return 2
    if not token or not repo:
        log("skipped: no GITHUB_TOKEN or GITHUB_REPOSITORY; the report is in the job summary")
        return 0
    head_repo = ((pr.get("head") or {}).get("repo") or {}).get("full_name")
    if head_repo and head_repo != repo:
        log(f"skipped: the pull request comes from the fork {head_repo}; its token cannot write "
            "comments here. The report is in the job summary.")
        return 0

    api = Api(os.environ.get("GITHUB_API_URL", "https://api.github.com"), repo, token)
    number = pr["number"]
    try:
        existing = api.own_comment(number)
        if existing is None:
            api.call("POST", f"/repos/{repo}/issues/{number}/comments", {"body": body})
            log(f"posted the report on pull request #{number}")
        else:
            api.call("PATCH", f"/repos/{repo}/issues/comments/{existing}", {"body": body})
            log(f"updated comment {existing} on pull request #{number}")
    except urllib.error.HTTPError as e:
        if e.code in (401, 403, 404):
            log(f"skipped: the token cannot write comments here (HTTP {e.code}: permissions "
                "'pull-requests: write' missing, or a fork). The report is in the job summary.")
            return 0
        log(f"skipped: GitHub answered HTTP {e.code}; the report is in the job summary")
        return 0
    except (urllib.error.URLError, OSError) as e:
        log(f"skipped: GitHub API unreachable ({e}); the report is in the job summary")
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
