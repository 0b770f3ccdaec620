#!/usr/bin/env python3
"""Checks of the deployment files that need no container engine.

    check_deploy.py dockerfile ROOT NURION   rules of ROOT/Dockerfile (+ hadolint when installed)
    check_deploy.py compose ROOT NURION      ROOT/compose.yaml: docker-compose accepts it, and
                                             every nurion command line and NURION_* variable in
                                             it is accepted by the NURION binary

Exit 0: all checks passed; 1: a check failed (each failure printed); 77: the tool a check needs
is missing (printed), nothing was checked.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
failures = []
notes = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def note(msg):
    notes.append(msg)
    print("note: " + msg)


def run(argv, env=None):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                       stdin=subprocess.DEVNULL, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def nurion_commands(nurion):
    rc, out = run([nurion, "--help"])
    if rc != 0:
        fail("nurion --help exited %d" % rc)
    return set(re.findall(r"^  ([a-z0-9]+)\s", out, re.M))


def check_nurion_argv(nurion, argv, where, commands):
    """argv: arguments after `nurion`. The command must exist and every --flag be in its help."""
    if not argv:
        return
    if argv[0].startswith("-"):
        rc, _ = run([nurion] + argv)
        if rc != 0:
            fail("%s: nurion %s exited %d" % (where, " ".join(argv), rc))
        return
    cmd = argv[0]
    if cmd not in commands:
        note("%s: `nurion %s` is not in this binary yet: line skipped" % (where, cmd))
        return False
    help_argv = [nurion, cmd] + (["render"] if cmd == "k8s" else []) + ["--help"]
    rc, out = run(help_argv)
    if rc != 0:
        fail("%s: nurion %s --help exited %d" % (where, cmd, rc))
        return True
    for a in argv[1:]:
        if a.startswith("--"):
            flag = a.split("=", 1)[0]
            if not re.search(re.escape(flag) + r"(?![A-Za-z0-9-])", out):
                fail("%s: `nurion %s` has no flag %s" % (where, cmd, flag))
    # --set key=value: the key must be a setting of the command
    for i, a in enumerate(argv[1:-1], 1):
        if a == "--set":
            key = argv[i + 1].split("=", 1)[0]
            if not key.startswith("kafka.") and ("`%s`" % key) not in out:
                fail("%s: `nurion %s` has no setting %s" % (where, cmd, key))
    return True


# ---- Dockerfile ----------------------------------------------------------------------------

def logical_lines(text):
    lines, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            lines.append(s)
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        lines.append(cur + s)
        cur = ""
    if cur:
        lines.append(cur)
    return lines


def apt_packages(run_cmd):
    pkgs = []
    for part in re.split(r"&&|;", run_cmd):
        words = shlex.split(part)
        if "apt-get" in words and "install" in words:
            pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


def check_dockerfile(root, nurion):
    path = os.path.join(root, "Dockerfile")
    text = open(path).read()
    lines = [l for l in logical_lines(text) if l and not l.startswith("#")]
    stages, user, entry, cmd = [], None, None, None
    runtime_pkgs, build_pkgs = [], []
    for l in lines:
        instr, _, rest = l.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stages.append(rest.split()[0])
            user = None
        elif instr == "RUN" and "apt-get" in rest:
            if "install" in rest and "--no-install-recommends" not in rest:
                fail("RUN apt-get install without --no-install-recommends: " + rest[:80])
            if "install" in rest and "rm -rf /var/lib/apt/lists/*" not in rest:
                fail("RUN apt-get install does not clean /var/lib/apt/lists: " + rest[:80])
            if "install" in rest and "apt-get update" not in rest:
                fail("RUN apt-get install without apt-get update in the same layer")
            pkgs = apt_packages(rest)
            if len(stages) >= 2:
                runtime_pkgs += pkgs
            else:
                build_pkgs += pkgs
            if pkgs:
                _, out = run(["apt-cache", "show", "--no-all-versions"] + pkgs)
                known = set(re.findall(r"^Package: (\S+)", out, re.M))
                for p in pkgs:
                    if p not in known:
                        fail("package %s does not exist in Debian (apt-cache show)" % p)
        elif instr == "USER":
            user = rest.strip()
        elif instr == "ENTRYPOINT":
            entry = rest.strip()
        elif instr == "CMD":
            cmd = rest.strip()
    if len(stages) < 2:
        fail("not a multi-stage build")
    for s in stages:
        if s != "debian:bookworm-slim":
            fail("base image %s is not debian:bookworm-slim" % s)
    if user is None or user.split(":")[0] in ("0", "root"):
        fail("the final stage does not run as a non-root USER (USER %s)" % user)
    if entry != '["nurion"]':
        fail('ENTRYPOINT is %s, not ["nurion"]' % entry)
    commands = nurion_commands(nurion)
    if cmd:
        import json
        check_nurion_argv(nurion, json.loads(cmd), "Dockerfile CMD", commands)
    # every shared library the binary needs comes from a runtime package, one they depend on,
    # or the base image (sanitizer runtimes of a NU_SANITIZE build aside: the image has none)
    if shutil.which("ldd") and shutil.which("dpkg") and runtime_pkgs:
        _, deps = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                       "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"]
                      + runtime_pkgs)
        closure = set(runtime_pkgs) | {"libc6"}
        closure |= set(l.strip().split(":")[0] for l in deps.splitlines()
                       if l and not l.startswith(" ") and not l.startswith("<"))
        rc, out = run(["ldd", nurion])
        needed = re.findall(r"^\s*(\S+) => (/\S+)", out, re.M)
        direct = set(re.findall(r"NEEDED\s+(\S+)", run(["objdump", "-p", nurion])[1]))
        for soname, lib in needed:
            if soname not in direct or re.match(r"lib(asan|ubsan|lsan|tsan)\.so", soname):
                continue
            rc, owner = run(["dpkg", "-S", os.path.realpath(lib)])
            if rc != 0:
                rc, owner = run(["dpkg", "-S", lib])
            pkg = owner.split(":")[0].strip() if rc == 0 else None
            if pkg is None:
                fail("no Debian package owns %s (%s)" % (soname, lib))
            elif pkg not in closure:
                fail("%s needs %s from package %s, which the runtime stage does not install"
                     % (os.path.basename(nurion), soname, pkg))
    # every pkg-config module CMake requires (tests aside) comes from a build-stage package
    if shutil.which("pkg-config") and shutil.which("dpkg"):
        cmake_files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, "src"))
                       for f in fs if f == "CMakeLists.txt"]
        if os.path.exists(os.path.join(root, "CMakeLists.txt")):
            cmake_files.append(os.path.join(root, "CMakeLists.txt"))
        for cf in cmake_files:
            for mod in re.findall(r"pkg_check_modules\(\s*\w+\s+REQUIRED\s+(?:IMPORTED_TARGET\s+)?"
                                  r"([\w.+-]+)", open(cf).read()):
                if mod == "criterion":  # tests only: the image is built with NU_TESTS=OFF
                    continue
                rc, pc = run(["pkg-config", "--variable=pcfiledir", mod])
                if rc != 0:
                    note("pkg-config module %s (%s) is not installed here: not checked"
                         % (mod, os.path.relpath(cf, root)))
                    continue
                rc, owner = run(["dpkg", "-S", os.path.join(pc.strip(), mod + ".pc")])
                pkg = owner.split(":")[0].strip() if rc == 0 else None
                if pkg and pkg not in build_pkgs:
                    fail("CMake needs pkg-config module %s from package %s, which the build "
                         "stage does not install" % (mod, pkg))
    hadolint = os.path.join(root, ".cache", "venv", "bin", "hadolint")
    if os.access(hadolint, os.X_OK):
        rc, out = run([hadolint, "--no-color", path])
        if rc != 0:
            fail("hadolint:\n" + out)
        else:
            print("hadolint: clean")
    else:
        note("hadolint not installed (scripts/deps puts it in .cache/venv): lint skipped")


# ---- compose.yaml --------------------------------------------------------------------------

def check_compose(root, nurion):
    try:
        import yaml
    except ImportError:
        print("python3-yaml is missing (scripts/deps installs docker-compose, which brings it)")
        return SKIP
    dc = shutil.which("docker-compose")
    if not dc:
        print("docker-compose is missing (scripts/deps installs it)")
        return SKIP
    path = os.path.join(root, "compose.yaml")
    for profiles in ([], ["--profile", "tansu", "--profile", "external"]):
        rc, out = run([dc, "-f", path] + profiles + ["config", "-q"])
        if rc != 0:
            fail("docker-compose %s config -q:\n%s" % (" ".join(profiles), out))
    # the check must be able to fail: a broken copy is refused
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=root, delete=False) as t:
        t.write(open(path).read().replace("condition: service_healthy",
                                          "condition: service_wobbly", 1))
    try:
        rc, _ = run([dc, "-f", t.name, "config", "-q"])
        if rc == 0:
            fail("docker-compose accepted a compose file with a bad depends_on condition")
    finally:
        os.unlink(t.name)

    doc = yaml.safe_load(open(path))
    commands = nurion_commands(nurion)
    for name, svc in doc["services"].items():
        image = str(svc.get("image", ""))
        if "nurion" not in image:
            continue
        argv = svc.get("command")
        if isinstance(argv, str):
            argv = shlex.split(argv)
        where = "compose service %s" % name
        checked = check_nurion_argv(nurion, argv or [], where, commands)
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        if checked is False or not argv:
            continue
        rc, out = run([nurion, argv[0], "--help"])
        for var in env:
            if var.startswith("NURION_") and ("`%s`" % var) not in out:
                fail("%s: `nurion %s` reads no %s (not in its settings table)"
                     % (where, argv[0], var))
        # the values given must pass the command's own validation
        if "--print-config" in out:
            e = dict(os.environ)
            for var, val in env.items():
                if var.startswith("NURION_"):
                    e[var] = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(val))
            extra = []
            if argv[0] == "stage":
                extra = [a for a in argv[1:]]
                extra = [a.replace("/examples/", os.path.join(root, "examples") + "/")
                         for a in extra]
            rc, out2 = run([nurion, argv[0]] + extra + ["--print-config"], env=e)
            if rc != 0:
                fail("%s: nurion %s --print-config with its settings exited %d:\n%s"
                     % (where, argv[0], rc, out2))
    return 0


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("dockerfile", "compose"):
        print(__doc__)
        return 2
    what, root, nurion = sys.argv[1:]
    if what == "dockerfile":
        if not shutil.which("apt-cache"):
            print("apt-cache is missing: not a Debian system")
            return SKIP
        rc, _ = run(["apt-cache", "show", "--no-all-versions", "libc6"])
        if rc != 0:
            print("apt-cache knows no packages (run apt-get update)")
            return SKIP
        check_dockerfile(root, nurion)
        rc = 0
    else:
        rc = check_compose(root, nurion)
        if rc == SKIP:
            return SKIP
    print("%d failed, %d notes" % (len(failures), len(notes)))
    sys.stdout.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
