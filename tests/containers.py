"""Docker for tests/test_container.py, with no image registry in reach: a Docker engine (Debian's
dockerd, started here when none answers), a Debian base image made with debootstrap from the
machine's own Debian mirror, and the wheelhouse an offline build of billplane's image installs.

The base image and the wheelhouse are made once per machine and kept. `make container-base` runs
this module ahead of `make test` (`.ci/run` does), so that the suite's clock is not charged for
debootstrap's minute nor for a first build of the image; the test makes whatever is missing
itself.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Debian's docker.io: the client that comes with the engine (Docker's own packages put theirs in
# the same place), else whichever is on PATH.
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker") or ""
DOCKERD = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/sbin") or ""
DEBOOTSTRAP = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin") or ""

# The engine these tests start when none answers: a socket and directories of its own, beside any
# other engine on the machine. No bridge and no iptables rules: the containers share the host's
# network (PostgreSQL listens on its loopback), and the shared machine's firewall is left alone.
OWN_SOCKET = "/run/billplane-test-docker.sock"
DOCKERD_ARGS = [
    f"--host=unix://{OWN_SOCKET}",
    "--data-root=/var/lib/billplane-test-docker",
    "--exec-root=/run/billplane-test-docker",
    "--pidfile=/run/billplane-test-docker.pid",
    "--bridge=none",
    "--iptables=false",
    "--ip6tables=false",
]
DOCKERD_LOG = Path("/run/billplane-test-docker.log")

# Debian 12 with its Python 3.11, as `python:3.11-slim` has it: what the Dockerfile needs of a base.
# The tag names the recipe, so a changed recipe builds a new image instead of reusing a stale one.
BASE_RECIPE = (
    ("--variant=minbase", "--include=python3,python3-venv,ca-certificates", "bookworm"),
    ("ENV LANG=C.UTF-8", 'CMD ["python3"]'),
)
BASE_IMAGE = (
    "billplane-test-base:bookworm-" + hashlib.sha256(repr(BASE_RECIPE).encode()).hexdigest()[:12]
)

# The Python of the image: the wheelhouse holds wheels for it, whatever Python runs the tests.
IMAGE_PYTHON = "3.11"
# What the Dockerfile copies from the checkout (.dockerignore leaves the rest out anyway).
BUILD_FILES = ["Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "constraints.txt"]


def docker(*args: str, env: dict[str, str], check: bool = True) -> str:
    """What `docker ARGS` printed; raises with its stderr when it fails (if `check`)."""
    done = subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed:\n{done.stderr}{done.stdout}")
    return done.stdout


def docker_logs(container: str, env: dict[str, str]) -> str:
    """What the container wrote, to stdout and to stderr."""
    done = subprocess.run([DOCKER, "logs", container], env=env, capture_output=True, text=True)
    return done.stdout + done.stderr


def _engine_answers(env: dict[str, str]) -> bool:
    done = subprocess.run(
        [DOCKER, "info", "--format", "{{.ServerVersion}}"], env=env, capture_output=True, timeout=30
    )
    return done.returncode == 0


def docker_environment() -> dict[str, str]:
    """The environment for `docker` commands that reach an engine: the one the environment names
    (DOCKER_HOST, else the default socket) if it answers, else the one started here."""
    # The classic builder is deprecated; BuildKit keeps its cache apart from the images, so the
    # image each run builds can be removed and the next run still finds its layers.
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    if _engine_answers(env):
        return env
    return {**env, "DOCKER_HOST": f"unix://{OWN_SOCKET}"}


def start_engine() -> subprocess.Popen[bytes] | None:
    """Start dockerd on its own socket unless an engine answers already; the process started, to
    stop when done with it (None if none was started). Needs root."""
    env = docker_environment()
    if _engine_answers(env):
        return None
    if os.geteuid() != 0:
        raise RuntimeError("no Docker engine answers, and only root can start one")
    with DOCKERD_LOG.open("ab") as log:
        dockerd = subprocess.Popen(
            [DOCKERD, *DOCKERD_ARGS],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives `make container-base`, for the suite to use
        )
    deadline = time.monotonic() + 60
    while not _engine_answers(env):
        if dockerd.poll() is not None or time.monotonic() > deadline:
            dockerd.kill()
            tail = DOCKERD_LOG.read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError("dockerd did not start:\n" + "\n".join(tail))
        time.sleep(0.2)
    return dockerd


def stop_engine(dockerd: subprocess.Popen[bytes]) -> None:
    dockerd.terminate()
    try:
        dockerd.wait(timeout=30)
    except subprocess.TimeoutExpired:
        dockerd.kill()
        dockerd.wait()


def has_image(tag: str, env: dict[str, str]) -> bool:
    inspected = subprocess.run([DOCKER, "image", "inspect", tag], env=env, capture_output=True)
    return inspected.returncode == 0


def ensure_base_image(env: dict[str, str]) -> str:
    """The base image's tag, after making it with debootstrap if this engine lacks it (about a
    minute: Debian's packages are downloaded and unpacked). Needs root."""
    if has_image(BASE_IMAGE, env):
        return BASE_IMAGE
    debootstrap_args, changes = BASE_RECIPE
    with tempfile.TemporaryDirectory(prefix="billplane-base-") as workdir:
        root = Path(workdir) / "root"
        mirror = _debian_mirror()
        done = subprocess.run(
            [DEBOOTSTRAP, *debootstrap_args, str(root), *([mirror] if mirror else [])],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"debootstrap failed:\n{done.stdout[-3000:]}{done.stderr}")
        # What apt downloaded and its package lists: a third of the tree, of no use in an image.
        for kept in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / kept).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar_root = ["tar", "--numeric-owner", "-C", str(root), "-c", "."]
        with subprocess.Popen(tar_root, stdout=subprocess.PIPE) as tar:
            imported = subprocess.run(
                [DOCKER, "import", *[f"--change={c}" for c in changes], "-", BASE_IMAGE],
                stdin=tar.stdout,
                env=env,
                capture_output=True,
                text=True,
            )
        if imported.returncode != 0 or tar.returncode != 0:
            raise RuntimeError(f"docker import failed:\n{imported.stderr}")
    return BASE_IMAGE


def _debian_mirror() -> str | None:
    """The Debian mirror this machine's apt uses (debootstrap's own default if none is found):
    the one the machine is known to reach."""
    sources = Path("/etc/apt")
    for path in [sources / "sources.list", *sorted(sources.glob("sources.list.d/*"))]:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            if path.suffix == ".sources" and words[:1] == ["URIs:"]:
                uris = words[1:]
            elif words[:1] == ["deb"]:
                uris = [w for w in words[1:] if "://" in w][:1]
            else:
                continue
            for uri in uris:
                if uri.rstrip("/").endswith("/debian"):
                    return uri
    return None


def ensure_wheelhouse() -> Path:
    """A folder holding every wheel billplane's image needs (its dependencies at the versions
    constraints.txt pins, and what builds its wheel), for the image's Python: downloaded once from
    the package index, kept under a name made of what it depends on."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = [*pyproject["project"]["dependencies"], *pyproject["build-system"]["requires"]]
    constraints = (ROOT / "constraints.txt").read_text()
    key = hashlib.sha256(repr((requirements, constraints, IMAGE_PYTHON)).encode()).hexdigest()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "billplane-test"
    wheelhouse = cache / f"wheelhouse-{key[:12]}"
    if wheelhouse.is_dir():
        return wheelhouse
    cache.mkdir(parents=True, exist_ok=True)
    # Filled beside it, then renamed: the wheelhouse appears whole or not at all, and a session
    # stopped half-way leaves none half-filled for the next to trust.
    filling = Path(tempfile.mkdtemp(dir=cache, prefix="filling-"))
    try:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
        done = subprocess.run(
            [
                *pip,
                *["--only-binary=:all:", "--python-version", IMAGE_PYTHON, "--implementation=cp"],
                *["--dest", str(filling), "-c", str(ROOT / "constraints.txt"), *requirements],
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pip download failed:\n{done.stderr}")
        try:
            filling.rename(wheelhouse)
        except OSError:
            if not wheelhouse.is_dir():  # else another session filled it first
                raise
    finally:
        shutil.rmtree(filling, ignore_errors=True)  # gone already, unless it failed
    return wheelhouse


def image_context(dest: Path) -> Path:
    """A build context for billplane's image in `dest`: what the Dockerfile copies from the
    checkout, and the wheelhouse."""
    for name in BUILD_FILES:
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(
        ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    shutil.copytree(ensure_wheelhouse(), dest / "wheelhouse")
    return dest


def build_image(context: Path, tag: str, env: dict[str, str]) -> None:
    """`docker build` as the Dockerfile's offline path has it: on the debootstrap base, from the
    context's wheelhouse, with no network at all."""
    docker(
        *["build", "--quiet", "--network=none", f"--tag={tag}"],
        *[f"--build-arg=BASE={BASE_IMAGE}", "--build-arg=WHEELHOUSE=wheelhouse"],
        str(context),
        env=env,
    )


def main() -> None:
    """`make container-base`: the engine (left running for the suite), the base image, the
    wheelhouse, and billplane's image built once from this checkout, whose layers BuildKit keeps:
    the suite's build then finds them all, or redoes only what changed since."""
    started = start_engine()
    if started is not None:
        print(f"Started dockerd (pid {started.pid}, socket {OWN_SOCKET}); it keeps running.")
    begun = time.monotonic()
    env = docker_environment()
    print(f"Base image {ensure_base_image(env)} ready.")
    print(f"Wheelhouse {ensure_wheelhouse()} ready.")
    with tempfile.TemporaryDirectory(prefix="billplane-image-") as context:
        tag = "billplane-test:prepared"
        build_image(image_context(Path(context)), tag, env)
        docker("image", "rm", tag, env=env)  # its layers stay in BuildKit's cache
    print(f"billplane's image built once ({time.monotonic() - begun:.0f} s in all).")


if __name__ == "__main__":
    main()
