#!/usr/bin/env python3
"""make check-readme: the README's commands, run as the README shows them, in a fresh copy.

    .venv/bin/python infra/check-readme.py [--only static|tour|deploy]...

The README marks what it expects a reader to run with HTML comments (invisible on GitHub):

    <!-- tour: terminal 1, ready when it prints "TEXT" -->   the ```sh block after it runs in a
                                 terminal of its own and keeps running (the receiver, make dev);
                                 the next step waits until it prints TEXT
    <!-- tour -->                the ```sh block after it runs in the reader's shell (variables
                                 carry over from block to block, as in one terminal)
    <!-- tour: wait until terminal 1 has printed "TEXT" N times -->
    <!-- tour: wait until `SHELL COMMAND` succeeds -->
                                 what the reader waits for before the next block (what the prose
                                 around it says terminal 1 shows, or a delivery being logged);
                                 the check waits up to two minutes
    <!-- tour: at the end, terminal 1 has printed "TEXT" N times -->
    <!-- deploy -->              the ```sh block after it is the deploy, rehearsed below
    <!-- parameters -->          the parameter table follows

Three parts, each able to fail:

static  every parameter of template.yaml is in the README's parameter table with its default,
        and nothing else is; every `sam deploy` or `sam package` the deploy block runs (through
        `make -n` for make targets) names the built template, build/sam/template.yaml (plain
        `sam deploy` reads template.yaml, whose CodeUri is the repository root); every relative
        link of the README names a file that exists.
tour    a fresh copy, target/check-readme/run-<pid>/clone, holds what a fresh clone does (no
        .local, no build/, no samconfig.toml), its files links to this tree's tracked (and
        untracked, not ignored) ones, .venv linked to this one's; cargo shares this target
        directory, so nothing is built twice (fresh_copy says why links, not copies). The
        tour's blocks run there in order, each under `set -euo pipefail`, with curl answering
        non-2xx as a failure (--fail-with-body). Ports are the README's with 3000, 4566 and 8443
        replaced by free ones, so a running `make dev` is neither needed nor disturbed. Then
        every request terminal 1 (the demo receiver) answered 200 had its signatures verify.
deploy  in the same copy, against a moto server of its own (S3, CloudFormation) on a free port:
        the deploy block runs as written (`make deploy`: make package, then sam deploy --guided
        with the built template), its questions answered (Confirm changes: y; at the end,
        "Deploy this changeset?": n, so nothing is executed). Then each function of the
        changeset's template names an S3 object whose bytes are build/sam/<Function>.zip, the
        zips `make package` built and sized, and nothing uploaded is bigger than a zip.
        SAM's own bootstrap stack (aws-sam-cli-managed-default) is created first, as SAM would
        create it: moto runs its template but returns no Outputs, and SAM then refuses it.

Exit status 0 when all of it holds (the copy is then removed); otherwise the failing step, its
output, and the copy with its logs, kept.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# One directory per run, so that runs at once (two make tests) never share a copy; removed when
# the run passes, kept with its logs when it fails.
RUNS = ROOT / "target" / "check-readme"
RUN = RUNS / f"run-{os.getpid()}"
CLONE = RUN / "clone"
LOGS = RUN / "logs"

WAIT_SECONDS = 120  # a tour wait: a delivery, an alert email (a busy 2-core machine is slow)
READY_SECONDS = 45 * 60  # a background terminal's readiness: make dev's first build is long
DEPLOY_SECONDS = 60 * 60  # make deploy: make package builds four fat-LTO functions


class CheckFailed(Exception):
    pass


def say(msg: str) -> None:
    print(f"check-readme: {msg}", flush=True)


# --------------------------------------------------------------------------- README


@dataclass
class Step:
    kind: str  # background | run | wait-print | wait-cmd | final-print | deploy
    line: int  # README line number of the marker
    code: str = ""
    terminal: str = ""
    text: str = ""
    count: int = 0


MARKER = re.compile(r"^<!--\s*(tour|deploy)\b:?\s*(.*?)\s*-->\s*$")


def parse_readme(text: str) -> list[Step]:
    lines = text.split("\n")
    steps: list[Step] = []
    i = 0
    while i < len(lines):
        m = MARKER.match(lines[i].strip())
        if not m:
            i += 1
            continue
        marker_line = i + 1
        what, rest = m.group(1), m.group(2)
        step = classify(what, rest, marker_line)
        if step.kind in ("background", "run", "deploy"):
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j >= len(lines) or lines[j].strip() not in ("```sh", "```bash"):
                raise CheckFailed(f"README.md:{marker_line}: the marker is not followed by a ```sh block")
            k = j + 1
            while k < len(lines) and lines[k].strip() != "```":
                k += 1
            if k >= len(lines):
                raise CheckFailed(f"README.md:{j + 1}: the ```sh block never ends")
            step.code = "\n".join(lines[j + 1 : k]) + "\n"
            i = k + 1
        else:
            i += 1
        steps.append(step)
    return steps


def classify(what: str, rest: str, line: int) -> Step:
    if what == "deploy":
        return Step("deploy", line)
    if not rest:
        return Step("run", line)
    m = re.fullmatch(r'(terminal \d+), ready when it prints "(.+)"', rest)
    if m:
        return Step("background", line, terminal=m.group(1), text=m.group(2))
    m = re.fullmatch(r'wait until (terminal \d+) has printed "(.+)" (\d+) times?', rest)
    if m:
        return Step("wait-print", line, terminal=m.group(1), text=m.group(2), count=int(m.group(3)))
    m = re.fullmatch(r"wait until `(.+)` succeeds", rest)
    if m:
        return Step("wait-cmd", line, code=m.group(1))
    m = re.fullmatch(r'at the end, (terminal \d+) has printed "(.+)" (\d+) times?', rest)
    if m:
        return Step("final-print", line, terminal=m.group(1), text=m.group(2), count=int(m.group(3)))
    raise CheckFailed(f"README.md:{line}: a tour marker this check does not know: {rest!r}")


# --------------------------------------------------------------------------- static


def load_yaml(path: Path):
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation's short forms (!Ref, !Sub...): their values are not needed here.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load(path.read_text(), Loader=Loader)


def parameter_table(text: str) -> dict[str, str]:
    """README's parameter table: `| `Name` | default | what to give |` rows (several names a row
    share its default)."""
    rows: dict[str, str] = {}
    section = text.split("<!-- parameters -->", 1)
    if len(section) != 2:
        raise CheckFailed("README.md has no <!-- parameters --> marker before its parameter table")
    for line in section[1].split("\n"):
        line = line.strip()
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        names = re.findall(r"`([A-Za-z0-9]+)`", cells[0])
        if not names or cells[0].lower().startswith("parameter"):
            continue
        default = cells[1] if len(cells) > 1 else ""
        parts = [d.strip() for d in default.split(",")]
        for n, name in enumerate(names):
            rows[name] = parts[n] if len(names) > 1 and len(parts) == len(names) else default
    return rows


def check_static(text: str, steps: list[Step]) -> None:
    template = load_yaml(ROOT / "template.yaml")
    params = template.get("Parameters") or {}
    table = parameter_table(text)
    problems = []
    for name, spec in params.items():
        if name not in table:
            problems.append(f"template.yaml's parameter {name} is not in the README's table")
            continue
        default = spec.get("Default")
        shown = table[name].strip("`")
        if default is None:
            if shown not in ("", "—", "-", "none", "(none)", "required"):
                problems.append(f"{name} has no default in template.yaml; the README says {table[name]!r}")
        else:
            want = str(default) if default != "" else '""'
            if shown != want and not (default == "" and shown in ('""', "empty", "(empty)")):
                problems.append(f"{name}'s default is {want!r} in template.yaml; the README says {table[name]!r}")
    for name in table:
        if name not in params:
            problems.append(f"the README's parameter table has {name}, which template.yaml does not declare")
    deploys = [s for s in steps if s.kind == "deploy"]
    if not deploys:
        problems.append("the README has no <!-- deploy --> block")
    for step in deploys:
        for command in expand_make(step.code):
            if re.search(r"\bsam (deploy|package)\b", command) and "--template-file build/sam/template.yaml" not in command:
                problems.append(
                    f"README.md:{step.line}: the deploy runs `{command.strip()}`, which does not name "
                    "the built template (--template-file build/sam/template.yaml): sam would read "
                    "template.yaml, whose CodeUri is the repository root, and upload that"
                )
    for target in sorted(set(re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text))):
        if re.match(r"[a-z]+:", target):
            continue
        if not (ROOT / target).exists():
            problems.append(f"the README links {target}, which does not exist")
    if problems:
        raise CheckFailed("static checks:\n  " + "\n  ".join(problems))
    say(f"static: {len(params)} template parameters in the README's table; deploy names the built template; links resolve")


def expand_make(code: str) -> list[str]:
    """The commands a block runs, with `make X` replaced by what `make -n X` prints."""
    out = []
    for line in code.split("\n"):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^(?:[A-Z_]+=\S*\s+)*make\s+(.*)$", line)
        if m:
            args = shlex.split(m.group(1))
            shown = subprocess.run(
                ["make", "-n", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True
            )
            if shown.returncode != 0:
                raise CheckFailed(f"`make -n {m.group(1)}` failed:\n{shown.stderr}")
            out += shown.stdout.replace("\\\n", " ").split("\n")
        else:
            out.append(line)
    return out


# --------------------------------------------------------------------------- the copy


# Copied, not linked: SAM reads a template's CodeUri from the template's real path, so a linked
# template.yaml would build (and deploy) this tree instead of the copy.
COPIED = {"template.yaml"}


def fresh_copy() -> Path:
    """A directory holding what a fresh clone does, as links to this tree's files.

    Every tracked file (and every untracked one git does not ignore: uncommitted work) is a
    symbolic link to this tree's; nothing else is there (no .local, build/, samconfig.toml),
    but .venv, linked to this tree's. Links rather than copies: cargo, sharing this target
    directory (its fingerprints name sources relative to the workspace), then sees in the copy
    exactly what it sees here, the same contents and modification times at every instant, so
    the copy's builds are this tree's builds and nothing is built twice; a copy taken while
    someone edits here could leave artifacts of an older file that this tree's next build would
    take for current."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = sorted({f for f in listed.split("\0") if f and (ROOT / f).is_file()})
    for rel in files:
        link = CLONE / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if rel in COPIED:
            shutil.copy2(ROOT / rel, link)
        else:
            link.symlink_to(ROOT / rel)
    (CLONE / ".venv").symlink_to(ROOT / ".venv")
    return CLONE


def remove_stale_runs() -> None:
    """The directories of earlier runs whose process is gone (rmtree removes links, never
    what they point to)."""
    for run in RUNS.glob("run-*"):
        try:
            os.kill(int(run.name[len("run-") :]), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(run, ignore_errors=True)
        except PermissionError:
            pass
    for leftover in ("clone", "logs"):  # the layout before runs had a directory each
        shutil.rmtree(RUNS / leftover, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment a new shell has: no AWS_* or WEBHOOKS_* from whoever runs the check."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEBHOOKS_", "HARNESS_"))}
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)
    env.pop("MFLAGS", None)
    env["CARGO_TARGET_DIR"] = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    env["SAM_CLI_TELEMETRY"] = "0"
    env.update(extra)
    return env


# --------------------------------------------------------------------------- processes


@dataclass
class Terminal:
    name: str
    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Tour:
    clone: Path
    ports: dict[str, int]
    terminals: dict[str, Terminal] = field(default_factory=dict)
    state: Path = field(default_factory=lambda: LOGS / "tour-state.sh")
    shell_log: Path = field(default_factory=lambda: LOGS / "tour-shell.log")

    def substitute(self, code: str) -> str:
        """The README's ports, replaced by this run's free ones."""
        for readme_port, port in self.ports.items():
            code = re.sub(rf"(?<![0-9]){readme_port}(?![0-9])", str(port), code)
        return code

    def env(self) -> dict[str, str]:
        return clean_env(
            WEBHOOKS_LISTEN=f"127.0.0.1:{self.ports['3000']}",
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{self.ports['4566']}",
        )

    def start(self, step: Step) -> None:
        log = LOGS / f"{step.terminal.replace(' ', '-')}.log"
        code = self.substitute(step.code)
        say(f"{step.terminal} (README.md:{step.line}), until it prints {step.text!r}:\n{indent(code)}")
        out = open(log, "w")
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=self.clone,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole at the end
        )
        terminal = Terminal(step.terminal, proc, log)
        self.terminals[step.terminal] = terminal
        deadline = time.monotonic() + READY_SECONDS
        while step.text not in terminal.output():
            if proc.poll() is not None:
                raise CheckFailed(
                    f"{step.terminal} (README.md:{step.line}) ended (status {proc.returncode}) before printing "
                    f"{step.text!r}:\n{tail(terminal.output())}"
                )
            if time.monotonic() > deadline:
                raise CheckFailed(f"{step.terminal} never printed {step.text!r}:\n{tail(terminal.output())}")
            time.sleep(0.5)
        say(f"{step.terminal} is ready")

    def run(self, step: Step) -> None:
        code = self.substitute(step.code)
        say(f"README.md:{step.line}:\n{indent(code)}")
        result = self.shell(code)
        print(indent(result.stdout, "    | "), end="", flush=True)
        if result.returncode != 0:
            raise CheckFailed(f"the block at README.md:{step.line} failed (status {result.returncode})")

    def shell(self, code: str, quiet: bool = False) -> subprocess.CompletedProcess:
        """One block in the reader's shell: the variables of the blocks before it, set -euo
        pipefail, and curl failing on an HTTP error with the body shown. Its variables are kept
        for the next block."""
        script = LOGS / "block.sh"
        script.write_text(code)
        state = shlex.quote(str(self.state))
        wrapper = f"""
set -euo pipefail
curl() {{ command curl -S --fail-with-body "$@"; }}
__baseline=" $(compgen -v | tr '\\n' ' ') "
if [ -f {state} ]; then source {state}; fi
source {shlex.quote(str(script))}
for __v in $(compgen -v); do
  case "$__v" in __*|BASH*|PIPESTATUS|_|FUNCNAME|COLUMNS|LINES) continue;; esac
  case "$__baseline" in *" $__v "*) continue;; esac
  declare -p "$__v"
done > {state}.new
mv {state}.new {state}
"""
        result = subprocess.run(
            ["bash", "-c", wrapper],
            cwd=self.clone,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if not quiet:
            with open(self.shell_log, "a") as f:
                f.write(f"$ {code}\n{result.stdout}\n")
        return result

    def wait_print(self, step: Step) -> None:
        terminal = self.terminals.get(step.terminal)
        if terminal is None:
            raise CheckFailed(f"README.md:{step.line}: no {step.terminal} was started")
        deadline = time.monotonic() + WAIT_SECONDS
        while (seen := terminal.output().count(step.text)) < step.count:
            if terminal.proc.poll() is not None:
                raise CheckFailed(f"{step.terminal} ended:\n{tail(terminal.output())}")
            if time.monotonic() > deadline:
                raise CheckFailed(
                    f"README.md:{step.line}: {step.terminal} printed {step.text!r} {seen} times, not "
                    f"{step.count}, within {WAIT_SECONDS} s:\n{tail(terminal.output())}"
                )
            time.sleep(0.5)
        say(f"{step.terminal} has printed {step.text!r} {step.count} times")

    def wait_cmd(self, step: Step) -> None:
        code = self.substitute(step.code)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            result = self.shell(code + "\n", quiet=True)
            if result.returncode == 0:
                say(f"waited until `{code}` succeeded")
                return
            if time.monotonic() > deadline:
                raise CheckFailed(
                    f"README.md:{step.line}: `{code}` did not succeed within {WAIT_SECONDS} s:\n{result.stdout}"
                )
            time.sleep(1)

    def final_print(self, step: Step) -> None:
        terminal = self.terminals.get(step.terminal)
        if terminal is None:
            raise CheckFailed(f"README.md:{step.line}: no {step.terminal} was started")
        seen = terminal.output().count(step.text)
        if seen != step.count:
            raise CheckFailed(
                f"README.md:{step.line}: {step.terminal} printed {step.text!r} {seen} times, not {step.count}"
            )

    def stop(self) -> None:
        for terminal in reversed(list(self.terminals.values())):
            stop_group(terminal.proc)


def stop_group(proc: subprocess.Popen) -> None:
    """Ctrl-C, as the reader would, then SIGKILL what is left of its process group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def indent(text: str, prefix: str = "    ") -> str:
    return "".join(prefix + line + "\n" for line in text.rstrip("\n").split("\n")) if text.strip() else ""


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])


# --------------------------------------------------------------------------- the tour


def check_tour(steps: list[Step], clone: Path) -> None:
    ports = {"3000": free_port(), "4566": free_port(), "8443": free_port()}
    say("tour: ports " + ", ".join(f"{k} -> {v}" for k, v in ports.items()))
    tour = Tour(clone, ports)
    tour.state.unlink(missing_ok=True)
    tour.shell_log.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        for step in steps:
            if step.kind == "background":
                tour.start(step)
            elif step.kind == "run":
                tour.run(step)
            elif step.kind == "wait-print":
                tour.wait_print(step)
            elif step.kind == "wait-cmd":
                tour.wait_cmd(step)
            elif step.kind == "final-print":
                tour.final_print(step)
        receiver = tour.terminals.get("terminal 1")
        if receiver is None:
            raise CheckFailed("the tour starts no terminal 1 (the demo receiver)")
        out = receiver.output()
        accepted = out.count("\n-> 200 ")
        valid = len(re.findall(r"^signature: valid$", out, re.M))
        if accepted == 0 or accepted != valid:
            raise CheckFailed(
                f"the receiver answered 200 {accepted} times and saw {valid} valid X-Comps-Signature headers:\n"
                + tail(out)
            )
        say(f"tour: done in {time.monotonic() - started:.0f} s; the receiver took {accepted} deliveries, every signature valid")
    finally:
        tour.stop()


# --------------------------------------------------------------------------- the deploy

DEPLOY_ANSWERS = [
    # (a prompt containing this, the answer); the first match wins.
    ("Stack Name", "comps-webhooks-rehearsal"),
    ("AWS Region", "us-east-1"),
    ("Parameter AdminJwtIssuer", "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example"),
    ("Parameter AdminJwtAudience", "example-client-id"),
    ("Parameter AlertEmails", "admin@example.com"),
    ("Parameter AlertFrom", "alerts@example.com"),
    ("Confirm changes before deploy", "y"),
    ("Allow SAM CLI IAM role creation", "y"),
    ("Save arguments to configuration file", "y"),
    ("Deploy this changeset?", "n"),
]
PROMPT = re.compile(r"\[[^\]\n]*\]: ?$")


def check_deploy(steps: list[Step], clone: Path) -> None:
    port = free_port()
    endpoint = f"http://localhost:{port}"  # moto finds a TemplateURL's bucket only on "localhost"
    env = clean_env(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
    )
    log = LOGS / "deploy-moto.log"
    say(f"deploy: moto on {endpoint} (S3, CloudFormation)")
    moto = subprocess.Popen(
        [str(ROOT / ".venv/bin/python"), str(clone / "infra/local/moto_server.py"), "--port", str(port), "--until-stdin-closes"],
        cwd=clone,
        env=env,
        stdin=subprocess.PIPE,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if moto.poll() is not None or time.monotonic() > deadline:
                    raise CheckFailed(f"moto did not start:\n{tail(log.read_text())}")
                time.sleep(0.3)
        boto3 = import_boto3()
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
        )
        cfn = session.client("cloudformation", endpoint_url=endpoint)
        s3 = session.client("s3", endpoint_url=endpoint)
        cfn.create_stack(
            StackName="aws-sam-cli-managed-default",
            TemplateBody=json.dumps(
                {
                    "Resources": {"SamCliSourceBucket": {"Type": "AWS::S3::Bucket"}},
                    "Outputs": {"SourceBucket": {"Value": {"Ref": "SamCliSourceBucket"}}},
                }
            ),
            Tags=[{"Key": "ManagedStackSource", "Value": "AwsSamCli"}],
        )
        for step in steps:
            if step.kind == "deploy":
                for line in step.code.split("\n"):
                    if line.split("#", 1)[0].strip():
                        drive(line, clone, env, step)
        verify_upload(clone, cfn, s3)
        saved = clone / "samconfig.toml"
        if not saved.exists() or 'stack_name = "comps-webhooks-rehearsal"' not in saved.read_text():
            raise CheckFailed("the guided deploy did not save its answers in samconfig.toml at the repository's root")
    finally:
        try:
            moto.stdin.close()
        except OSError:
            pass
        stop_group(moto)


def import_boto3():
    try:
        import boto3  # noqa: F401  (in .venv)
    except ImportError as e:
        raise CheckFailed(f"run with .venv/bin/python (boto3): {e}")
    return boto3


def drive(command: str, clone: Path, env: dict[str, str], step: Step) -> None:
    """Run one deploy command, answering its questions as an operator would."""
    say(f"deploy (README.md:{step.line}): {command.strip()}")
    log = LOGS / "deploy.log"
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=clone,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    fd = proc.stdout.fileno()
    transcript = b""
    pending = ""
    asked: dict[str, int] = {}
    deadline = time.monotonic() + DEPLOY_SECONDS
    with open(log, "wb") as out:
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], 0.5)
                if ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    out.write(chunk)
                    out.flush()
                    transcript += chunk
                    pending = (pending + chunk.decode(errors="replace")).rsplit("\n", 1)[-1]
                    biggest = max((int(n) for n in re.findall(rb"Uploading to \S+\s+\d+ / (\d+)", chunk)), default=0)
                    if biggest > 50_000_000:
                        raise CheckFailed(f"the deploy uploads {biggest} bytes in one object: not the built zips")
                    continue
                if time.monotonic() > deadline:
                    raise CheckFailed(f"`{command.strip()}` did not finish within {DEPLOY_SECONDS} s")
                # Silence after a line ending "[default]: " is a question.
                if PROMPT.search(pending):
                    question = pending.strip()
                    answer = next((a for key, a in DEPLOY_ANSWERS if key in question), "")
                    asked[question] = asked.get(question, 0) + 1
                    if asked[question] > 2:
                        raise CheckFailed(
                            f"the deploy asks {question!r} again and again: a parameter without a default "
                            "this check does not know (add it to DEPLOY_ANSWERS and the README's table)"
                        )
                    out.write(f"<answered: {answer!r}>\n".encode())
                    proc.stdin.write((answer + "\n").encode())
                    proc.stdin.flush()
                    pending = ""
        finally:
            if proc.poll() is None and time.monotonic() > deadline:
                stop_group(proc)
    status = proc.wait()
    text = transcript.decode(errors="replace")
    if status != 0:
        raise CheckFailed(f"`{command.strip()}` failed (status {status}):\n{tail(text, 80)}")
    if "Changeset created successfully" not in text:
        raise CheckFailed(f"`{command.strip()}` created no changeset:\n{tail(text, 80)}")
    sizes = re.findall(r"^\s*(\w+Function)\s+(\d+) bytes zipped", text, re.M)
    say("deploy: make package built " + ", ".join(f"{fn} ({int(n):,} bytes)" for fn, n in sizes))


def verify_upload(clone: Path, cfn, s3) -> None:
    import hashlib

    stack = "comps-webhooks-rehearsal"
    sets = cfn.list_change_sets(StackName=stack)["Summaries"]
    if len(sets) != 1:
        raise CheckFailed(f"expected one change set of {stack}, found {len(sets)}")
    change_set = sets[0]["ChangeSetName"]
    if sets[0].get("ExecutionStatus") not in (None, "AVAILABLE"):
        raise CheckFailed(f"the change set was executed ({sets[0].get('ExecutionStatus')}): the rehearsal answers no")
    body = cfn.get_template(StackName=stack, ChangeSetName=change_set, TemplateStage="Original")["TemplateBody"]
    template = body if isinstance(body, dict) else load_yaml_text(body)
    if not (template or {}).get("Resources"):
        # moto answers the stack's (empty) template: read the one SAM handed CloudFormation,
        # which it uploads beside the functions (TemplateURL).
        buckets = {o["OutputValue"] for s in cfn.describe_stacks(StackName="aws-sam-cli-managed-default")["Stacks"] for o in s.get("Outputs", [])}
        uploaded = [
            (b, o["Key"]) for b in buckets for o in s3.list_objects_v2(Bucket=b).get("Contents", []) if o["Key"].endswith(".template")
        ]
        if len(uploaded) != 1:
            raise CheckFailed(f"expected one template uploaded by sam deploy, found {uploaded}")
        bucket, key = uploaded[0]
        template = load_yaml_text(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
    built = load_yaml(clone / "build/sam/template.yaml")
    functions = [n for n, r in built["Resources"].items() if r.get("Type") == "AWS::Serverless::Function"]
    if not functions:
        raise CheckFailed("build/sam/template.yaml declares no functions")
    objects = {}
    for fn in functions:
        uri = template["Resources"][fn]["Properties"].get("CodeUri")
        m = re.fullmatch(r"s3://([^/]+)/(.+)", uri or "")
        if not m:
            raise CheckFailed(f"the change set's {fn} has CodeUri {uri!r}, not an uploaded object")
        bucket, key = m.groups()
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        zipped = (clone / "build/sam" / f"{fn}.zip").read_bytes()
        if data != zipped:
            raise CheckFailed(
                f"{fn}: the uploaded object s3://{bucket}/{key} ({len(data):,} bytes) is not "
                f"build/sam/{fn}.zip ({len(zipped):,} bytes)"
            )
        objects[fn] = (key, hashlib.md5(data).hexdigest(), len(data))
        biggest = max(o["Size"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
        if biggest > max(len(zipped), 1_000_000) * 2:
            raise CheckFailed(f"s3://{bucket} holds an object of {biggest:,} bytes: more than the built zips")
    for fn, (key, md5, size) in objects.items():
        say(f"deploy: {fn}: uploaded {key}, {size:,} bytes, md5 {md5} = build/sam/{fn}.zip")
    say(f"deploy: change set {change_set} of {stack} deploys the built zips (not executed)")


def load_yaml_text(text: str):
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    try:
        return json.loads(text)
    except ValueError:
        return yaml.load(text, Loader=Loader)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=["static", "tour", "deploy"])
    args = parser.parse_args(argv)
    parts = args.only or ["static", "tour", "deploy"]
    remove_stale_runs()
    LOGS.mkdir(parents=True)
    started = time.monotonic()
    try:
        for tool in ("jq", "curl", "make"):
            if shutil.which(tool) is None:
                raise CheckFailed(f"{tool} is not installed (the README's tour uses it: apt-get install {tool})")
        text = README.read_text()
        steps = parse_readme(text)
        if "static" in parts:
            check_static(text, steps)
        clone = None
        if "tour" in parts or "deploy" in parts:
            clone = fresh_copy()
            say(f"a fresh copy of this tree (links to its files): {clone.relative_to(ROOT)}")
        if "tour" in parts:
            tour_steps = [s for s in steps if s.kind != "deploy"]
            if not any(s.kind == "run" for s in tour_steps):
                raise CheckFailed("the README marks no tour blocks (<!-- tour -->)")
            check_tour(tour_steps, clone)
        if "deploy" in parts:
            check_deploy(steps, clone)
    except CheckFailed as e:
        say(f"FAILED after {time.monotonic() - started:.0f} s: {e}")
        say(f"the copy and its logs are kept: {RUN.relative_to(ROOT)}/ (clone/, logs/)")
        return 1
    say(f"ok ({', '.join(parts)}) in {time.monotonic() - started:.0f} s")
    shutil.rmtree(RUN, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
