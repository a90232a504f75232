"""Every error cleaner raises on purpose, rooted at :class:`CleanerError`.

Library errors (httpx, pydantic) are translated where they enter, and chained with
``from``, so callers handle one tree::

    CleanerError
    ├── ConfigError                  bad environment; exit 2 before any request
    ├── BlastRadiusError             a plan too large to trust: the cycle acts on nothing
    └── ApiError                     anything the Batches API did or failed to do
        ├── FederationError          the identity-token exchange failed (4xx: fatal)
        ├── ApiConnectionError       no usable response: refused, reset, timed out
        │   ├── ApiUnreachableError  ... still so after every retry: ends the cycle
        │   └── UntrustedCertificateError  the server's TLS certificate failed
        │                            verification: configuration, never retried; ends the cycle
        ├── ApiResponseError         a response we cannot trust (bad JSON, bad shape)
        │   └── ListingError         a listing that does not terminate or repeats itself
        └── ApiStatusError           an error status with the documented envelope
            ├── BadRequestError      400 (also: delete of a batch not ended)
            ├── AuthenticationError  401
            ├── PermissionDeniedError 403
            ├── NotFoundError        404
            ├── ConflictError        409
            ├── RateLimitError       429 with a retry-after: wait and retry
            │   └── SpendCapError    429 without retry-after (a spend cap, days away), or
            │                        asking a longer wait than a call may take: ends the cycle
            └── ServerError          5xx and 529

What each error means for the work is decided in one table, :data:`ERROR_POLICY`: whether
the call is retried, and whether the error ends the whole cycle (it would fail every other
call the same way) or only the one action it struck.
Instances may override the table: ``x-should-retry`` decides retrying, and the
``error.details.error_code`` values ``organization_on_hold`` and
``enforced_spend_limit_reached`` end the cycle whatever their status says.
"""

from __future__ import annotations

from dataclasses import dataclass


class CleanerError(Exception):
    """Root of every error cleaner raises deliberately."""


class ConfigError(CleanerError):
    """The environment does not describe a valid configuration.

    ``problems`` maps each offending variable name to what is wrong with it.
    """

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        lines = [f"{name}: {why}" for name, why in sorted(self.problems.items())]
        super().__init__("invalid configuration: " + "; ".join(lines))


class BlastRadiusError(CleanerError):
    """The plan acts on a larger share of the listing than CLEANER_MAX_DELETE_FRACTION."""


#: ``error.details.error_code`` values that end the cycle whatever their status says.
FATAL_ERROR_CODES = frozenset({"organization_on_hold", "enforced_spend_limit_reached"})


class ApiError(CleanerError):
    """The Batches API call did not succeed."""

    #: per-instance overrides of :data:`ERROR_POLICY` (``x-should-retry``, an error code)
    retry_override: bool | None = None
    fatal_override: bool | None = None

    @property
    def retryable(self) -> bool:
        """Whether retrying the same call may succeed (see :data:`ERROR_POLICY`)."""
        return disposition(self).retried

    @property
    def fatal(self) -> bool:
        """Whether every further call will fail the same way: the cycle stops."""
        return disposition(self).ends_cycle


class ApiConnectionError(ApiError):
    """No complete response arrived: connection refused or reset, or a timeout."""


class ApiUnreachableError(ApiConnectionError):
    """The API stayed unreachable through every retry; the cycle cannot go on."""


class FederationError(ApiError):
    """Exchanging the identity token for an access token failed.

    A 4xx (rule mismatch, bad token) or an unreadable identity token will not heal by
    retrying; a 5xx, a 429 or a connection failure is retried within the call. Either way
    one that reaches the cycle is fatal: without a token every further call fails too.
    ``error`` is the token endpoint's error code (``invalid_grant``...). Neither the
    identity token nor an access token is ever part of the message.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str = "",
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.request_id = request_id
        if retryable is None:  # no status: the endpoint was not reached
            retryable = status is None or status >= 500 or status in (408, 429)
        self.retry_override = retryable


class UntrustedCertificateError(ApiConnectionError):
    """The server's certificate was not trusted: the CA store is wrong, not the network.

    Behind a TLS-intercepting proxy this means the proxy's CA is missing from the store
    SSL_CERT_FILE / SSL_CERT_DIR name; retrying cannot help: it ends the cycle.
    """


class ApiResponseError(ApiError):
    """A response arrived but cannot be trusted (malformed JSON, wrong shape)."""


class ListingError(ApiResponseError):
    """The listing does not terminate, or its cursor chain repeats itself."""


class ApiStatusError(ApiError):
    """The API answered with an error status and (usually) the documented envelope."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_type: str = "",
        request_id: str | None = None,
        should_retry: bool | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.request_id = request_id
        #: ``error.details.error_code`` when the body has one; an unknown code changes
        #: nothing but the log line (the error is handled as its bare ``error_type``)
        self.error_code = error_code
        #: an explicit ``x-should-retry`` from the server, which overrides the status rule
        self.should_retry = should_retry
        self.retry_override = should_retry
        if error_code in FATAL_ERROR_CODES:
            self.fatal_override, self.retry_override = True, False

    def __str__(self) -> str:
        base = super().__str__()
        kind = f"{self.error_type} ({self.error_code})" if self.error_code else self.error_type
        return f"{self.status} {kind}: {base}" if kind else base


class BadRequestError(ApiStatusError):
    """400 invalid_request_error."""


class AuthenticationError(ApiStatusError):
    """401: the key is missing or wrong."""

    fatal = True


class PermissionDeniedError(ApiStatusError):
    """403: the key may not do this."""

    fatal = True


class NotFoundError(ApiStatusError):
    """404: unknown id, or (transiently) one the API has not caught up with."""


class ConflictError(ApiStatusError):
    """409: the batch is in a state that forbids the call; retried like the SDKs do."""


class RateLimitError(ApiStatusError):
    """429 with a retry-after: the request budget is exhausted for now."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float,
        error_type: str = "rate_limit_error",
        request_id: str | None = None,
        should_retry: bool | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(
            message,
            status=429,
            error_type=error_type,
            request_id=request_id,
            should_retry=should_retry,
            error_code=error_code,
        )
        self.retry_after_s = retry_after_s


class SpendCapError(RateLimitError):
    """A 429 not worth waiting out in this cycle: stop it, the next cycle tries again.

    Either no retry-after at all (a monthly spend cap, whose wait is days), an
    ``enforced_spend_limit_reached`` error code, or a retry-after longer than one call's
    whole retry budget.
    """


class ServerError(ApiStatusError):
    """5xx or 529: the API failed; retrying is expected to help."""


@dataclass(frozen=True, slots=True)
class Disposition:
    """What an error means for the work: retry the call? end the whole cycle?"""

    retried: bool
    ends_cycle: bool


#: The error policy, most specific class first. An error that is not retried and does not
#: end the cycle fails only the action it struck; the next cycle tries that batch again.
ERROR_POLICY: tuple[tuple[type[ApiError], Disposition], ...] = (
    (FederationError, Disposition(retried=False, ends_cycle=True)),
    (ApiUnreachableError, Disposition(retried=False, ends_cycle=True)),
    (UntrustedCertificateError, Disposition(retried=False, ends_cycle=True)),
    (ApiConnectionError, Disposition(retried=True, ends_cycle=False)),
    (SpendCapError, Disposition(retried=False, ends_cycle=True)),
    (RateLimitError, Disposition(retried=True, ends_cycle=False)),
    (AuthenticationError, Disposition(retried=False, ends_cycle=True)),
    (PermissionDeniedError, Disposition(retried=False, ends_cycle=True)),
    (ConflictError, Disposition(retried=True, ends_cycle=False)),
    (ServerError, Disposition(retried=True, ends_cycle=False)),
    (ApiError, Disposition(retried=False, ends_cycle=False)),
)


def disposition(exc: ApiError) -> Disposition:
    """The row of :data:`ERROR_POLICY` for ``exc``; ``x-should-retry`` overrides retrying."""
    found = next(rule for cls, rule in ERROR_POLICY if isinstance(exc, cls))
    retried, ends = exc.retry_override, exc.fatal_override
    return Disposition(
        retried=found.retried if retried is None else retried,
        ends_cycle=found.ends_cycle if ends is None else ends,
    )


def ends_cycle(exc: BaseException) -> bool:
    """True when ``exc`` will fail every further call alike: stop the cycle, not one batch."""
    return isinstance(exc, ApiError) and disposition(exc).ends_cycle


_BY_STATUS: dict[int, type[ApiStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: ServerError,  # request timeout: the SDKs retry it like a server error
    409: ConflictError,
}


def status_error(
    status: int,
    message: str,
    *,
    error_type: str = "",
    request_id: str | None = None,
    should_retry: bool | None = None,
    retry_after_s: float | None = None,
    error_code: str | None = None,
) -> ApiStatusError:
    """Build the error class that matches an HTTP error status (and error code)."""
    if status == 429:
        if retry_after_s is None or error_code == "enforced_spend_limit_reached":
            # A spend cap: x-should-retry cannot make it worth a retry in this cycle.
            return SpendCapError(
                message,
                retry_after_s=retry_after_s or 0.0,
                error_type=error_type,
                request_id=request_id,
                error_code=error_code,
            )
        return RateLimitError(
            message,
            retry_after_s=retry_after_s,
            error_type=error_type,
            request_id=request_id,
            should_retry=should_retry,
            error_code=error_code,
        )
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiStatusError)
    return cls(
        message,
        status=status,
        error_type=error_type,
        request_id=request_id,
        should_retry=should_retry,
        error_code=error_code,
    )
