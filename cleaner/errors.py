"""Every error cleaner raises on purpose, rooted at :class:`CleanerError`.

Library errors (httpx, pydantic) are translated where they enter, and chained with
``from``, so callers handle one tree::

    CleanerError
    ├── ConfigError                  bad environment; exit 2 before any request
    └── ApiError                     anything the Batches API did or failed to do
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
"""

from __future__ import annotations


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


class ApiError(CleanerError):
    """The Batches API call did not succeed."""

    #: whether retrying the same call may succeed
    retryable: bool = False


class ApiConnectionError(ApiError):
    """No complete response arrived: connection refused or reset, or a timeout."""

    retryable = True


class ApiUnreachableError(ApiConnectionError):
    """The API stayed unreachable through every retry; the cycle cannot go on."""

    retryable = False


class UntrustedCertificateError(ApiConnectionError):
    """The server's certificate was not trusted: the CA store is wrong, not the network.

    Behind a TLS-intercepting proxy this means the proxy's CA is missing from the store
    SSL_CERT_FILE / SSL_CERT_DIR name; retrying cannot help.
    """

    retryable = False


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
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.request_id = request_id
        # An explicit ``x-should-retry`` from the server overrides the status rule.
        if should_retry is not None:
            self.retryable = should_retry

    def __str__(self) -> str:
        base = super().__str__()
        return f"{self.status} {self.error_type}: {base}" if self.error_type else base


class BadRequestError(ApiStatusError):
    """400 invalid_request_error."""


class AuthenticationError(ApiStatusError):
    """401: the key is missing or wrong."""


class PermissionDeniedError(ApiStatusError):
    """403: the key may not do this."""


class NotFoundError(ApiStatusError):
    """404: unknown id, or (transiently) one the API has not caught up with."""


class ConflictError(ApiStatusError):
    """409: the batch is in a state that forbids the call; retried like the SDKs do."""

    retryable = True


class RateLimitError(ApiStatusError):
    """429 with a retry-after: the request budget is exhausted for now."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float,
        error_type: str = "rate_limit_error",
        request_id: str | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(
            message,
            status=429,
            error_type=error_type,
            request_id=request_id,
            should_retry=should_retry,
        )
        self.retry_after_s = retry_after_s


class SpendCapError(RateLimitError):
    """A 429 not worth waiting out in this cycle: stop it, the next cycle tries again.

    Either no retry-after at all (a monthly spend cap, whose wait is days) or a
    retry-after longer than one call's whole retry budget.
    """

    retryable = False


class ServerError(ApiStatusError):
    """5xx or 529: the API failed; retrying is expected to help."""

    retryable = True


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
) -> ApiStatusError:
    """Build the error class that matches an HTTP error status."""
    if status == 429:
        if retry_after_s is None:
            # No retry-after means a spend cap; x-should-retry cannot make it worth a retry.
            return SpendCapError(
                message, retry_after_s=0.0, error_type=error_type, request_id=request_id
            )
        return RateLimitError(
            message,
            retry_after_s=retry_after_s,
            error_type=error_type,
            request_id=request_id,
            should_retry=should_retry,
        )
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiStatusError)
    return cls(
        message,
        status=status,
        error_type=error_type,
        request_id=request_id,
        should_retry=should_retry,
    )
