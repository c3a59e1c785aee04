"""A store in an S3 bucket (AWS, SeaweedFS, MinIO...): the `Backend` interface over boto3.

Same semantics as the directory backend. Files are staged in a local temporary file and sent with one PUT
(multipart above MULTIPART_THRESHOLD), so a key never holds partial bytes. S3 acknowledges a PUT only once it
is durable, so `barrier()` has nothing to do. Exclusive creation is a conditional PUT (`If-None-Match: *`).
Every request is retried with exponential backoff on connection errors and 5xx answers for `retry_seconds`,
then fails with one StoreError naming the store (docs/design.md, "S3 stores").
"""

from __future__ import annotations

import io
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, TypeVar

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError, NoCredentialsError

from rtvault.errors import StoreError, os_failure
from rtvault.store.backend import GuardedFile
from rtvault.store.readers import PositionedReader

MULTIPART_THRESHOLD = 64 << 20
MULTIPART_CHUNK = 16 << 20
READ_CHUNK = 1 << 20  # a ranged GET reads at least this much: a tar header seek then small reads cost one request
_FIRST_DELAY_S = 0.25
_MAX_DELAY_S = 5.0
_MISSING = ("404", "NoSuchKey", "NotFound")
_EXISTS = ("412", "PreconditionFailed", "409", "ConditionalRequestConflict")
_THROTTLED = ("SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable")

T = TypeVar("T")


@dataclass(frozen=True)
class S3Location:
    """Where an S3 store lives and how to reach it."""

    name: str
    bucket: str
    prefix: str = ""
    endpoint: str = ""
    region: str = ""
    access_key: str = ""
    secret_key: str = ""
    retry_seconds: float = 30.0
    lock_days: int = 0  # S3 Object Lock: each file written once is retained this long (0: none)
    lock_mode: str = "COMPLIANCE"

    @classmethod
    def of_url(cls, name: str, url: str, **options: Any) -> S3Location:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return cls(name, bucket, prefix.strip("/"), **options)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


LOCKS_PREFIX = "locks/"  # the writer lock's requests are never refused by the outage window (see `call`)
# files rewritten in place or removed by design (locks, state, records of copies, the catalog's backups, of which
# the newest few are kept): never given a retention, so
# that Object Lock keeps every file written once and nothing that would pile up versions for no protection
MUTABLE_PREFIXES = ("locks/", "tmp/", "verify/", "copies/", "roles/", "heads/", "catalog/")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _retryable(error: Exception) -> bool:
    if isinstance(error, ConnectionError | HTTPClientError | S3UploadFailedError):
        return True
    return isinstance(error, ClientError) and (_status(error) >= 500 or _code(error) in _THROTTLED)


def _reason(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', _status(error))} {details.get('Message', '')}".strip()
    return str(error)


class S3Backend:
    """A store under `prefix` in an S3 bucket."""

    def __init__(self, where: S3Location) -> None:
        self.where = where
        self.location = where.url
        timeout = max(1.0, min(60.0, where.retry_seconds / 3))  # a silent server: ~3 attempts within the budget
        config = BotoConfig(
            retries={"total_max_attempts": 1},  # retried here instead, within one time budget for every call
            connect_timeout=min(5.0, timeout), read_timeout=timeout,
            s3={"addressing_style": "path"} if where.endpoint else {},
            max_pool_connections=16,
        )
        session = boto3.session.Session(aws_access_key_id=where.access_key or None,
                                        aws_secret_access_key=where.secret_key or None)
        self.client = session.client("s3", endpoint_url=where.endpoint or None,
                                     region_name=where.region or "us-east-1", config=config)
        self._down_until = 0.0  # after a call gave up, the others fail at once for a while (see `call`)
        self._down_reason = ""
        self.transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK,
                                       max_concurrency=4)

    # --- requests -----------------------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"invalid store key {key!r}")
        return f"{self.where.prefix}/{key}" if self.where.prefix else key

    def call(self, request: Callable[[], T], *, fresh: bool = False) -> T:
        """`request()`, retried with exponential backoff on connection errors and 5xx answers until the
        store's retry budget is spent; other S3 errors raise ClientError for the caller to interpret."""
        # Once one call gave up, the server is taken as down for one more retry budget: the calls already
        # queued (a backup's parallel workers) fail at once instead of each waiting out its own budget.
        # `fresh` calls (the writer lock's) always try: a failed run must still release its lock on the way
        # out when the server is back.
        if not fresh and time.monotonic() < self._down_until:
            raise StoreError(self._down_reason)
        deadline = time.monotonic() + self.where.retry_seconds
        delay, attempts = _FIRST_DELAY_S, 0
        while True:
            attempts += 1
            try:
                return request()
            except NoCredentialsError:
                raise StoreError(f"S3 store {self.where.name}: no credentials (set AWS_ACCESS_KEY_ID and "
                                 f"AWS_SECRET_ACCESS_KEY, or credentials_file)") from None
            except (BotoCoreError, ClientError, S3UploadFailedError) as error:
                if not _retryable(error):
                    raise
                if time.monotonic() + delay > deadline:
                    endpoint = self.where.endpoint or "AWS"
                    self._down_reason = (f"S3 store {self.where.name} ({endpoint}) unreachable after {attempts} "
                                         f"attempts: {_reason(error)}")
                    self._down_until = time.monotonic() + self.where.retry_seconds
                    raise StoreError(self._down_reason) from None
                time.sleep(delay * random.uniform(0.5, 1.0))  # jitter: writers sharing a server do not align
                delay = min(delay * 2, _MAX_DELAY_S)

    def _failed(self, what: str, key: str, error: ClientError) -> StoreError:
        if _code(error) in _MISSING:
            return StoreError(f"{self.location}: {key} is missing")
        if _code(error) == "NoSuchBucket":
            return StoreError(f"S3 store {self.where.name}: bucket {self.where.bucket} does not exist "
                              "(run `rtvault init`)")
        if self.where.lock_days and _code(error) in ("InvalidRequest", "InvalidArgument") and what == "write":
            return StoreError(self._no_lock(f"cannot write {key} with a retention ({_reason(error)})"))
        return StoreError(f"S3 store {self.where.name}: cannot {what} {key}: {_reason(error)}")

    def _request(self, what: str, key: str, request: Callable[[], T]) -> T:
        try:
            return self.call(request, fresh=key.startswith(LOCKS_PREFIX))
        except ClientError as error:
            raise self._failed(what, key, error) from None

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.call(lambda: self.client.head_object(Bucket=self.where.bucket, Key=self._full(key)),
                             fresh=key.startswith(LOCKS_PREFIX))
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise self._failed("read", key, error) from None

    # --- the Backend interface ----------------------------------------------------------------------------

    def stage(self) -> _StagedUpload:
        return _StagedUpload(self)

    def put(self, key: str, data: bytes, *, durable: bool = False) -> None:
        """Write `data` at `key` unless a file is already there (as the directory backend's put)."""
        self._put_if_absent(key, data)

    def retention(self, key: str) -> dict[str, Any]:
        """The Object Lock arguments of a PUT of `key`: its retain-until date when the store sets
        object_lock_days and the file is written once (docs/design.md, "S3 stores")."""
        if not self.where.lock_days or key.startswith(MUTABLE_PREFIXES):
            return {}
        until = datetime.now(UTC) + timedelta(days=self.where.lock_days)
        return {"ObjectLockMode": self.where.lock_mode, "ObjectLockRetainUntilDate": until}

    def _put_if_absent(self, key: str, data: bytes, *, retained: bool = True) -> bool:
        extra = self.retention(key) if retained else {}
        try:
            self.call(lambda: self.client.put_object(Bucket=self.where.bucket, Key=self._full(key), Body=data,
                                                     IfNoneMatch="*", **extra), fresh=key.startswith(LOCKS_PREFIX))
        except ClientError as error:
            if _code(error) in _EXISTS:
                return False
            raise self._failed("write", key, error) from None
        return True

    def barrier(self) -> None:
        """Nothing to wait for: S3 acknowledges a PUT once the object is durable."""

    def get(self, key: str) -> bytes:
        def request() -> bytes:
            return self.client.get_object(Bucket=self.where.bucket, Key=self._full(key))["Body"].read()
        return self._request("read", key, request)

    def open(self, key: str) -> BinaryIO:
        """A seekable reader doing ranged GETs: a restore seeks into a tar without reading all of it."""
        head = self._head(key)
        if head is None:
            raise StoreError(f"{self.location}: {key} is missing")
        return io.BufferedReader(_RangeReader(self, key, int(head["ContentLength"])), buffer_size=READ_CHUNK)

    def read_range(self, key: str, start: int, size: int) -> bytes:
        def request() -> bytes:
            answer = self.client.get_object(Bucket=self.where.bucket, Key=self._full(key),
                                            Range=f"bytes={start}-{start + size - 1}")
            return answer["Body"].read()
        return self._request("read", key, request)

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise StoreError(f"{self.location}: {key} is missing")
        return int(head["ContentLength"])

    def modified(self, key: str) -> float:
        """Last modification time by the server's clock (seconds since the epoch); StoreError when missing."""
        head = self._head(key)
        if head is None:
            raise StoreError(f"{self.location}: {key} is missing")
        return head["LastModified"].timestamp()

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under a folder-like prefix, one ListObjectsV2 page at a time."""
        folder = self._full(prefix.rstrip("/")) + "/"
        cut = len(self.where.prefix) + 1 if self.where.prefix else 0
        options = {"Bucket": self.where.bucket, "Prefix": folder}
        while True:
            page = self._request("list", prefix, lambda options=options: self.client.list_objects_v2(**options))
            for item in page.get("Contents", []):
                yield item["Key"][cut:]
            if not page.get("IsTruncated"):
                return
            options = {**options, "ContinuationToken": page["NextContinuationToken"]}

    def delete(self, key: str) -> None:
        self._request("delete", key, lambda: self.client.delete_object(Bucket=self.where.bucket, Key=self._full(key)))

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Write a small file only if none is there (locks): a conditional PUT, atomic on the server."""
        return self._put_if_absent(key, data, retained=False)

    def replace(self, key: str, data: bytes) -> None:
        """Overwrite a small mutable file (the lock's lease renewal); a PUT replaces a key atomically."""
        self._request("write", key, lambda: self.client.put_object(Bucket=self.where.bucket, Key=self._full(key),
                                                                   Body=data))

    def clean_staging(self, older_than_s: float, now: float) -> int:
        """Nothing to clean: staged files are anonymous local temporary files, gone with their process."""
        return 0

    # --- the bucket ---------------------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist yet (`rtvault init`)."""
        try:
            self.call(lambda: self.client.head_bucket(Bucket=self.where.bucket))
            exists = True
        except ClientError as error:
            if _code(error) not in (*_MISSING, "NoSuchBucket"):
                raise self._failed("open bucket", self.where.bucket, error) from None
            exists = False
        if not exists:
            lock = {"ObjectLockEnabledForBucket": True} if self.where.lock_days else {}
            self._request("create bucket", self.where.bucket,
                          lambda: self.client.create_bucket(Bucket=self.where.bucket, **lock))
        if self.where.lock_days:
            self.check_object_lock()

    def _no_lock(self, what: str) -> str:
        return (f"S3 store {self.where.name}: {what}: bucket {self.where.bucket} does not enforce Object Lock, which "
                "a server enables only when the bucket is created: give the store a new bucket (`rtvault init` "
                "creates it with Object Lock) and replicate into it, or remove object_lock_days")

    def check_object_lock(self) -> None:
        """StoreError unless the bucket has Object Lock enabled (object_lock_days needs it)."""
        try:
            answer = self.call(lambda: self.client.get_object_lock_configuration(Bucket=self.where.bucket))
        except ClientError as error:
            if _code(error) in ("ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound",
                                "NoSuchObjectLockConfiguration", *_MISSING):
                raise StoreError(self._no_lock("object_lock_days is set")) from None
            raise self._failed("read the Object Lock configuration of", self.where.bucket, error) from None
        if answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise StoreError(self._no_lock("object_lock_days is set"))

    def is_empty(self) -> bool:
        """Whether nothing at all is stored under the store's prefix."""
        options = {"Bucket": self.where.bucket, "MaxKeys": 1}
        if self.where.prefix:
            options["Prefix"] = self.where.prefix + "/"
        page = self._request("list", self.where.prefix or "/", lambda: self.client.list_objects_v2(**options))
        return not page.get("Contents")


class _StagedUpload:
    """A file being written to a local temporary file; `commit` sends it with one PUT (or one multipart)."""

    def __init__(self, backend: S3Backend) -> None:
        self.backend = backend
        try:
            staging = tempfile.TemporaryFile(prefix="rtvault-s3-")  # noqa: SIM115 - closed by commit/discard
        except OSError as error:
            raise os_failure(error, tempfile.gettempdir(), store=backend.location) from None
        self.file: BinaryIO = GuardedFile(staging, f"a temporary file in {tempfile.gettempdir()}",  # type: ignore[assignment]
                                          backend.location)

    def commit(self, key: str, *, durable: bool = False) -> bool:
        """Send the file to `key`; False (and nothing sent) when the key already exists: content-addressed
        keys hold the same bytes. `durable` changes nothing: an acknowledged PUT is durable."""
        try:
            if self.backend.exists(key):
                return False
            self.file.flush()
            size = self.file.seek(0, io.SEEK_END)
            self.backend._request("write", key, lambda: self._send(key, size))
            return True
        finally:
            self.file.close()

    def _send(self, key: str, size: int) -> None:
        self.file.seek(0)  # again at every attempt
        where, full, extra = self.backend.where, self.backend._full(key), self.backend.retention(key)
        if size > MULTIPART_THRESHOLD:
            self.backend.client.upload_fileobj(self.file, where.bucket, full, Config=self.backend.transfer,
                                               ExtraArgs=extra or None)
        else:
            self.backend.client.put_object(Bucket=where.bucket, Key=full, Body=self.file, **extra)

    def discard(self) -> None:
        self.file.close()


class _RangeReader(PositionedReader):
    """The raw side of `S3Backend.open`: each read is one ranged GET at the current position."""

    def __init__(self, backend: S3Backend, key: str, size: int) -> None:
        self.backend, self.key, self.length, self.position = backend, key, size, 0

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.length - self.position)
        if wanted <= 0:
            return 0
        data = self.backend.read_range(self.key, self.position, wanted)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)
