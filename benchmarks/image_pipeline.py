"""Image pipeline: filefleet's image preparation and S3 download against the naive way, side by side.

Claims measured (each compared with the naive way in the same run, on the same machine):

- ``ratio_image_prep``: turning a 12 MP JPEG into the embedder's input (upright RGB JPEG, long side between
  EMBEDDING_MIN_SIDE=768 and EMBEDDING_SIDE=1024, quality 90), ``app.pipeline.images.prepare_image``
  (libjpeg draft mode: decoded at reduced scale, then thumbnail and exif_transpose) is at least 3 times as
  fast as the naive way (``Image.open``, ``load()`` = full decode, ``convert("RGB")``, ``thumbnail`` to the
  very same size, ``ImageOps.exif_transpose``, save). Both produce an image of the same size, checked, and of
  the same picture, checked (mean pixel
  difference). Measured in CPU time (``time.process_time``), steadier than wall time on a loaded machine;
  wall time is shown too. The variants alternate, image by image, for ``--rounds`` rounds after a warm-up
  round; the ratio is the median over every (image, round) pair. Target >= 3.
- ``peak_rss_mib_1gib_object``: ``app.pipeline.fetch.fetch`` of a 1 GiB object from S3 (moto), read to the
  end through the spooled file it returns and hashed, peaks below 150 MiB of RSS; the naive
  ``get_object(...)["Body"].read()`` is shown beside it. Each runs in a fresh subprocess (this script with
  ``--child``), whose peak RSS is read from ``VmHWM`` in /proc/self/status. Not ``ru_maxrss``: Linux carries
  the high-water mark of the parent's address space across fork/vfork + exec into the child's
  ``ru_maxrss``, so a child of this (large) process would report at least this process's own peak; it is
  shown, for the record, as "ru_maxrss". Target < 150.

The 1 GiB object is uploaded by multipart upload, 64 MiB parts of random bytes, so this process never holds
it whole. moto keeps objects in spooled temporary files: its TMPDIR, and the children's (fetch spools to disk
above 8 MiB), is a scratch directory made in a place with room (checked with ``shutil.disk_usage`` before
anything is written, as is MemAvailable: moto's CompleteMultipartUpload and GetObject hold the object in
memory) and removed at the end. The children find moto through AWS_ENDPOINT_URL, with dummy credentials and
no AWS config file. Linux only (/proc).

Run: ``.venv/bin/python benchmarks/image_pipeline.py [--photos N] [--rounds N] [--object-mib N]``. The last
line printed is ``RESULT {json}``. Exit status 1: a correctness check failed (the two image outputs differ in
size or picture, or a download did not return every byte); a missed target is reported, not an error.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import CACHE_DIR, REPO, BenchmarkFailure, print_result, run, running_moto

MIB = 1024 * 1024
GIB = 1024 * MIB
REGION = "us-east-1"
BUCKET = "bench-image-pipeline"
OBJECT_KEY = "big/object.bin"
PART_BYTES = 64 * MIB
MAX_PIXELS = 64_000_000  # MAX_IMAGE_PIXELS's default
JPEG_QUALITY = 90  # what prepare_image saves the embedding input with
MAX_MEAN_PIXEL_DIFFERENCE = 4.0  # of 255; the same picture differs by ~0.6, a wrong rotation by ~70
CHILD_TIMEOUT = 180.0
TARGET_RATIO_IMAGE_PREP = 3.0
TARGET_PEAK_RSS_MIB = 150.0
SIZES = ((4032, 3024), (4000, 3000))  # 12 MP: a 4:3 phone sensor and a round 12 MP


# -- part 1: image preparation ---------------------------------------------------------------------------


@dataclass
class Photo:
    key: str
    width: int
    height: int
    seed: int
    orientation: int
    data: bytes = field(repr=False)
    filefleet_cpu: list[float] = field(default_factory=list)
    naive_cpu: list[float] = field(default_factory=list)
    filefleet_wall: list[float] = field(default_factory=list)
    naive_wall: list[float] = field(default_factory=list)
    output_size: tuple[int, int] = (0, 0)
    mean_difference: float = 0.0

    @property
    def ratios_cpu(self) -> list[float]:
        return [n / f for n, f in zip(self.naive_cpu, self.filefleet_cpu, strict=True)]

    @property
    def ratios_wall(self) -> list[float]:
        return [n / f for n, f in zip(self.naive_wall, self.filefleet_wall, strict=True)]


def make_photos(count: int) -> list[Photo]:
    """12 MP sample photos, sizes alternating, different seeds; the second has EXIF orientation 6."""
    from app.samples import photo

    photos = []
    for index in range(count):
        width, height = SIZES[index % len(SIZES)]
        seed = index + 1
        orientation = 6 if index == 1 else 1
        key = f"photos/{width}x{height}-seed{seed}-o{orientation}.jpg"
        print(f"generating {key} ...", flush=True)
        data = photo(width, height, seed=seed, orientation=orientation)
        photos.append(Photo(key, width, height, seed, orientation, data))
    return photos


def prep_filefleet(photo: Photo) -> bytes:
    from app.pipeline.images import prepare_image

    prepared = prepare_image(io.BytesIO(photo.data), key=photo.key, max_pixels=MAX_PIXELS, index_gps=False)
    if (prepared.width, prepared.height) != (photo.width, photo.height):
        raise BenchmarkFailure(
            f"{photo.key}: prepare_image reports {prepared.width}x{prepared.height}, "
            f"the photo is {photo.width}x{photo.height}"
        )
    if prepared.exif.get("orientation") != photo.orientation:
        raise BenchmarkFailure(
            f"{photo.key}: prepare_image reports orientation {prepared.exif.get('orientation')}, "
            f"the photo has {photo.orientation}"
        )
    return prepared.embedding_input


def naive_box(photo: Photo) -> tuple[int, int]:
    """The stored (not yet upright) size filefleet's input has, so the naive way makes the very same image."""
    from app.pipeline.images import EMBEDDING_MIN_SIDE

    scale = 1
    while max(photo.width, photo.height) // (scale * 2) >= EMBEDDING_MIN_SIDE and scale < 8:
        scale *= 2  # libjpeg's reduced-scale decode: 1/2, 1/4, 1/8
    return -(-photo.width // scale), -(-photo.height // scale)


def prep_naive(photo: Photo) -> bytes:
    """The same output the obvious way: decode all 12 MP, then shrink, turn upright, save."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(photo.data)) as image:
        image.load()
        rgb = image.convert("RGB")
    rgb.thumbnail(naive_box(photo))
    upright = ImageOps.exif_transpose(rgb)
    buffer = io.BytesIO()
    upright.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def check_outputs(photo: Photo, filefleet: bytes, naive: bytes) -> tuple[tuple[int, int], float]:
    """Both outputs: RGB JPEGs of the same size, long side within the embedder's range, upright, alike."""
    from PIL import Image, ImageChops, ImageStat

    from app.pipeline.images import EMBEDDING_MIN_SIDE, EMBEDDING_SIDE

    with Image.open(io.BytesIO(filefleet)) as ours, Image.open(io.BytesIO(naive)) as theirs:
        problems = []
        for label, image in (("filefleet", ours), ("naive", theirs)):
            if image.format != "JPEG" or image.mode != "RGB":
                problems.append(f"{label} output is {image.format} {image.mode}, not an RGB JPEG")
            if not EMBEDDING_MIN_SIDE <= max(image.size) <= EMBEDDING_SIDE:
                problems.append(
                    f"{label} output is {image.size}, long side not in {EMBEDDING_MIN_SIDE}..{EMBEDDING_SIDE}"
                )
            portrait = image.height > image.width
            if portrait != ((photo.height > photo.width) != (photo.orientation in (5, 6, 7, 8))):
                problems.append(
                    f"{label} output {image.size} is not upright for orientation {photo.orientation}"
                )
        if ours.size != theirs.size:
            problems.append(f"sizes differ: filefleet {ours.size}, naive {theirs.size}")
        difference = float("inf")
        if not problems:
            difference = statistics.fmean(ImageStat.Stat(ImageChops.difference(ours, theirs)).mean)
            if difference > MAX_MEAN_PIXEL_DIFFERENCE:
                problems.append(
                    f"not the same picture: mean pixel difference {difference:.1f} "
                    f"> {MAX_MEAN_PIXEL_DIFFERENCE}"
                )
        if problems:
            raise BenchmarkFailure(f"{photo.key}: " + "; ".join(problems))
        return ours.size, difference


def timed(run: Callable[[], bytes]) -> tuple[float, float, bytes]:
    """(CPU seconds, wall seconds, output) of one call."""
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    output = run()
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    return cpu, wall, output


def run_image_prep(photos: list[Photo], rounds: int) -> None:
    variants: dict[str, Callable[[Photo], bytes]] = {"filefleet": prep_filefleet, "naive": prep_naive}
    print("image prep: warm-up round and output checks ...", flush=True)
    for photo in photos:
        outputs = {name: variant(photo) for name, variant in variants.items()}
        photo.output_size, photo.mean_difference = check_outputs(
            photo, outputs["filefleet"], outputs["naive"]
        )
    for round_index in range(rounds):
        print(f"image prep: round {round_index + 1} of {rounds} ...", flush=True)
        for photo_index, photo in enumerate(photos):
            order = ["filefleet", "naive"] if (round_index + photo_index) % 2 == 0 else ["naive", "filefleet"]
            for name in order:
                cpu, wall, output = timed(lambda v=variants[name], p=photo: v(p))
                size = _jpeg_size(output)
                if size != photo.output_size:
                    raise BenchmarkFailure(f"{photo.key}: {name} output {size}, expected {photo.output_size}")
                getattr(photo, f"{name}_cpu").append(cpu)
                getattr(photo, f"{name}_wall").append(wall)


def _jpeg_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


# -- part 2: peak RSS of a 1 GiB download ------------------------------------------------------------------


def vm_hwm_mib(pid: int | str = "self") -> float:
    """Peak resident set of one address space (this process's after its exec), in MiB."""
    match = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    if match is None:
        raise SystemExit(f"no VmHWM in /proc/{pid}/status: this benchmark needs Linux")
    return int(match.group(1)) / 1024


def ru_maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_scratch(requested: str | None, need: int) -> Path:
    """A fresh directory with ``need`` bytes free: --scratch-dir, else the temp dir, else .cache."""
    candidates = [Path(requested)] if requested else [Path(tempfile.gettempdir()), CACHE_DIR]
    for candidate in candidates:
        candidate.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(candidate).free
        print(f"disk: {candidate}: {free / GIB:.1f} GiB free, {need / GIB:.1f} GiB needed", flush=True)
        if free >= need:
            return Path(tempfile.mkdtemp(prefix="image-pipeline-", dir=candidate))
    raise SystemExit(f"no room for the {need / GIB:.1f} GiB of temporary files: pass --scratch-dir")


def check_memory(need: int) -> None:
    match = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    available = int(match.group(1)) * 1024 if match else 0
    print(f"memory: {available / GIB:.1f} GiB available, {need / GIB:.1f} GiB needed", flush=True)
    if available < need:
        raise SystemExit(
            f"only {available / GIB:.1f} GiB of memory available: moto holds the object in memory while it "
            "completes the upload and serves it, and so does the naive download; try a smaller --object-mib"
        )


def moto_pid() -> int | None:
    """Our moto server child, to read its peak memory (informational)."""
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                if b"moto.server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return int(pid)
            except OSError:
                continue
    return None


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION
    )
    config = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=300)
    return session.client("s3", endpoint_url=endpoint, config=config)


def upload_object(s3: Any, size: int) -> str:
    """A multipart upload of ``size`` random bytes, one part in memory at a time; returns their SHA-256."""
    block = random.Random(20260101).randbytes(min(PART_BYTES, size))
    digest = hashlib.sha256()
    # CRC32 (composite) checksums: without an algorithm moto computes a full-object CRC64NVME at completion.
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=OBJECT_KEY, ChecksumAlgorithm="CRC32")[
        "UploadId"
    ]
    parts = []
    try:
        offset, number = 0, 1
        while offset < size:
            length = min(PART_BYTES, size - offset)
            data = number.to_bytes(8, "big") + block[8:length]  # every part differs: order is hashed too
            digest.update(data)
            response = s3.upload_part(
                Bucket=BUCKET,
                Key=OBJECT_KEY,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm="CRC32",
            )
            parts.append({"PartNumber": number, "ETag": response["ETag"]})
            offset += length
            number += 1
            if offset % (4 * PART_BYTES) == 0 or offset == size:
                print(f"  uploaded {offset / MIB:.0f} of {size / MIB:.0f} MiB", flush=True)
        print(f"  completing the multipart upload ({len(parts)} parts) ...", flush=True)
        s3.complete_multipart_upload(
            Bucket=BUCKET, Key=OBJECT_KEY, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        try:
            s3.abort_multipart_upload(Bucket=BUCKET, Key=OBJECT_KEY, UploadId=upload_id)
        except Exception as exc:  # noqa: BLE001 - the original error matters more
            print(f"(abort_multipart_upload failed too: {exc})", file=sys.stderr)
        raise
    stored = s3.head_object(Bucket=BUCKET, Key=OBJECT_KEY)["ContentLength"]
    if stored != size:
        raise BenchmarkFailure(f"uploaded {size} bytes, moto stores {stored}")
    return digest.hexdigest()


def child_env(endpoint: str, scratch: Path, max_file_bytes: int) -> dict[str, str]:
    """Our environment without any AWS_* variable, then boto3 pointed at moto with dummy credentials."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        TMPDIR=str(scratch),  # where fetch's SpooledTemporaryFile rolls over to
        MAX_FILE_BYTES=str(max_file_bytes),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


def run_download_child(variant: str, env: dict[str, str], size: int) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", variant, "--child-size", str(size)]
    print(f"download: {variant} in a fresh process ...", flush=True)
    try:
        done = subprocess.run(
            command, env=env, cwd=REPO, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkFailure(f"{variant} download did not finish within {CHILD_TIMEOUT:.0f} s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("CHILD ")]
    if done.returncode != 0 or not lines:
        raise BenchmarkFailure(
            f"{variant} download exited {done.returncode}; its stderr:\n{done.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("CHILD "))
    return result


def check_download(variant: str, result: dict[str, Any], size: int, sha256: str) -> None:
    if result["bytes"] != size or result["sha256"] != sha256:
        raise BenchmarkFailure(
            f"{variant} download returned {result['bytes']} bytes with SHA-256 {result['sha256'][:16]}..., "
            f"uploaded {size} bytes with {sha256[:16]}..."
        )


def child_main(variant: str, size: int) -> int:
    """In a fresh process: download the object one way, hash every byte, print ``CHILD {json}``."""
    started_mib = vm_hwm_mib()
    if variant == "filefleet":
        from app.aws import AwsClients
        from app.config import PipelineSettings
        from app.events import Action, FileEvent, Source
        from app.pipeline.fetch import CHUNK_BYTES, fetch

        settings = PipelineSettings.from_env(os.environ)  # MAX_FILE_BYTES, as `filefleet worker` reads it
        s3 = AwsClients(region=os.environ["AWS_DEFAULT_REGION"], concurrency=1).s3()
        event = FileEvent(
            action=Action.CREATED,
            bucket=BUCKET,
            key=OBJECT_KEY,
            source=Source.S3,
            event_name="ObjectCreated:CompleteMultipartUpload",
            size=size,
        )
        ready_mib = vm_hwm_mib()
        start = time.perf_counter()
        digest, received = hashlib.sha256(), 0
        with fetch(s3, event, max_bytes=settings.max_file_bytes) as obj:
            fetched = time.perf_counter() - start
            spooled_to_disk = getattr(obj.file, "_rolled", None)
            while chunk := obj.file.read(CHUNK_BYTES):
                digest.update(chunk)
                received += len(chunk)
        extra = {"fetch_seconds": round(fetched, 2), "spooled_to_disk": spooled_to_disk}
    else:
        import boto3

        s3 = boto3.client("s3")  # endpoint, region and credentials from the environment
        ready_mib = vm_hwm_mib()
        start = time.perf_counter()
        data = s3.get_object(Bucket=BUCKET, Key=OBJECT_KEY)["Body"].read()
        digest, received = hashlib.sha256(data), len(data)
        del data
        extra = {}
    seconds = time.perf_counter() - start
    result = {
        "variant": variant,
        "bytes": received,
        "sha256": digest.hexdigest(),
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(vm_hwm_mib(), 1),
        "ready_rss_mib": round(ready_mib, 1),  # peak after imports and client, before the download
        "started_rss_mib": round(started_mib, 1),
        "ru_maxrss_mib": round(ru_maxrss_mib(), 1),  # includes the parent's high-water mark: see docstring
        **extra,
    }
    print("CHILD " + json.dumps(result), flush=True)
    return 0


# -- report ----------------------------------------------------------------------------------------------


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def print_image_table(photos: list[Photo]) -> None:
    header = (
        f"{'image':<32} {'orient':>6} {'KiB':>6} {'output':>9} {'ff cpu ms':>9} {'naive cpu':>9} "
        f"{'ratio cpu':>9} {'ff wall ms':>10} {'naive wall':>10} {'ratio wall':>10} {'pixel diff':>10}"
    )
    print(header)
    print("-" * len(header))
    for photo in photos:
        output = f"{photo.output_size[0]}x{photo.output_size[1]}"
        print(
            f"{photo.key:<32} {photo.orientation:>6} {len(photo.data) // 1024:>6} {output:>9} "
            f"{_ms(photo.filefleet_cpu):>9.1f} {_ms(photo.naive_cpu):>9.1f} "
            f"{statistics.median(photo.ratios_cpu):>9.2f} {_ms(photo.filefleet_wall):>10.1f} "
            f"{_ms(photo.naive_wall):>10.1f} {statistics.median(photo.ratios_wall):>10.2f} "
            f"{photo.mean_difference:>10.2f}"
        )


def print_download_table(rows: list[dict[str, Any]], size: int) -> None:
    header = (
        f"{'download of ' + f'{size / MIB:.0f} MiB':<34} {'peak RSS MiB':>12} {'before GET':>10} "
        f"{'growth':>7} {'ru_maxrss':>9} {'seconds':>7}  bytes and SHA-256"
    )
    print(header)
    print("-" * len(header))
    labels = {
        "filefleet": "filefleet fetch() + read spool",
        "naive": "naive Body.read()",
    }
    for row in rows:
        print(
            f"{labels[row['variant']]:<34} {row['peak_rss_mib']:>12.1f} {row['ready_rss_mib']:>10.1f} "
            f"{row['peak_rss_mib'] - row['ready_rss_mib']:>7.1f} {row['ru_maxrss_mib']:>9.1f} "
            f"{row['seconds']:>7.2f}  all {row['bytes']} bytes, SHA-256 matches"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--photos", type=int, default=4, help="12 MP sample photos (default 4, at least 2)")
    parser.add_argument(
        "--rounds", type=int, default=7, help="timed rounds over every photo, after a warm-up (default 7)"
    )
    parser.add_argument(
        "--object-mib", type=int, default=1024, help="size of the downloaded object in MiB (default 1024)"
    )
    parser.add_argument(
        "--scratch-dir",
        default=None,
        help="where moto's and fetch's temporary files go (default: the temp dir if it has room, else "
        "benchmarks/.cache); a fresh subdirectory is made and removed",
    )
    parser.add_argument("--child", choices=("filefleet", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--child-size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child, args.child_size)
    if args.photos < 2:
        parser.error("--photos must be at least 2 (the second one carries EXIF orientation 6)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.object_mib < 1:
        parser.error("--object-mib must be at least 1")

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise SystemExit(143)  # unwinds through the finally blocks that stop moto and remove the scratch dir

    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    size = args.object_mib * MIB
    max_file_bytes = max(2 * GIB, 2 * size)
    # Checked before anything is written: moto keeps the parts and the completed object on disk (both at
    # once while it completes), fetch spools the whole object; in memory, moto builds the object whole at
    # completion (twice) and serves it whole, while the naive child holds it too.
    check_memory(4 * size + GIB)
    scratch = make_scratch(args.scratch_dir, 3 * size + GIB)
    downloads: list[dict[str, Any]] = []
    moto_peak_mib: float | None = None
    try:
        photos = make_photos(args.photos)
        run_image_prep(photos, args.rounds)
        with running_moto(scratch) as endpoint:
            print(f"moto on {endpoint} (bound to 127.0.0.1 only), temporary files in {scratch}", flush=True)
            s3 = s3_client(endpoint)
            s3.create_bucket(Bucket=BUCKET)
            print(f"uploading a {size / MIB:.0f} MiB object in {PART_BYTES // MIB} MiB parts ...", flush=True)
            upload_start = time.monotonic()
            sha256 = upload_object(s3, size)
            upload_seconds = time.monotonic() - upload_start
            env = child_env(endpoint, scratch, max_file_bytes)
            for variant in ("filefleet", "naive"):
                result = run_download_child(variant, env, size)
                check_download(variant, result, size, sha256)
                downloads.append(result)
            pid = moto_pid()
            moto_peak_mib = vm_hwm_mib(pid) if pid else None
            s3.delete_object(Bucket=BUCKET, Key=OBJECT_KEY)
            s3.delete_bucket(Bucket=BUCKET)
    except BenchmarkFailure as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    ours, theirs = downloads
    ratios_cpu = [ratio for photo in photos for ratio in photo.ratios_cpu]
    ratios_wall = [ratio for photo in photos for ratio in photo.ratios_wall]
    print()
    print_image_table(photos)
    print(
        f"\nms = median of {args.rounds} rounds (after a warm-up round), filefleet and naive alternating; "
        "ratio = naive / filefleet per (image, round), median. CPU time (time.process_time) is the measure "
        "of ratio_image_prep; wall time is shown beside it. pixel diff = mean absolute difference of the two "
        f"outputs, of 255 (refused above {MAX_MEAN_PIXEL_DIFFERENCE})."
    )
    print()
    print_download_table(downloads, size)
    moto_note = f"; moto's own peak RSS {moto_peak_mib:.0f} MiB" if moto_peak_mib else ""
    print(
        f"\npeak RSS = VmHWM of the child process; before GET = the same after imports and client creation; "
        f"ru_maxrss is inflated by this process's peak (see the docstring). MAX_FILE_BYTES={max_file_bytes}. "
        f"Upload took {upload_seconds:.1f} s{moto_note}."
    )
    result: dict[str, Any] = {
        "ratio_image_prep": round(statistics.median(ratios_cpu), 2),
        "ratio_image_prep_measure": "cpu (time.process_time)",
        "ratio_image_prep_wall": round(statistics.median(ratios_wall), 2),
        "peak_rss_mib_1gib_object": ours["peak_rss_mib"],
        "peak_rss_mib_naive": theirs["peak_rss_mib"],
        "ratio_peak_rss_naive_vs_filefleet": round(theirs["peak_rss_mib"] / ours["peak_rss_mib"], 2),
        "rss_before_get_mib_filefleet": ours["ready_rss_mib"],
        "rss_before_get_mib_naive": theirs["ready_rss_mib"],
        "ru_maxrss_mib_filefleet": ours["ru_maxrss_mib"],
        "ru_maxrss_mib_naive": theirs["ru_maxrss_mib"],
        "download_seconds_filefleet": ours["seconds"],
        "download_seconds_naive": theirs["seconds"],
        "filefleet_spooled_to_disk": ours.get("spooled_to_disk"),
        "image_prep_ms": {
            photo.key: {
                "filefleet_cpu": round(_ms(photo.filefleet_cpu), 1),
                "naive_cpu": round(_ms(photo.naive_cpu), 1),
                "filefleet_wall": round(_ms(photo.filefleet_wall), 1),
                "naive_wall": round(_ms(photo.naive_wall), 1),
                "ratio_cpu": round(statistics.median(photo.ratios_cpu), 2),
                "output": list(photo.output_size),
                "pixel_diff": round(photo.mean_difference, 2),
            }
            for photo in photos
        },
        "photos": len(photos),
        "rounds": args.rounds,
        "object_mib": args.object_mib,
        "max_file_bytes": max_file_bytes,
        "upload_seconds": round(upload_seconds, 1),
        "moto_peak_rss_mib": round(moto_peak_mib, 1) if moto_peak_mib else None,
        "seconds_total": round(time.monotonic() - started, 1),
    }
    met = {
        "ratio_image_prep": result["ratio_image_prep"] >= TARGET_RATIO_IMAGE_PREP,
        "peak_rss_mib_1gib_object": result["peak_rss_mib_1gib_object"] < TARGET_PEAK_RSS_MIB,
    }
    print_result(result, met)
    return 0


if __name__ == "__main__":
    run(main, stopped="moto stopped and temporary files removed")
