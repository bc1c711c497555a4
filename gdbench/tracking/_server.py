"""Whether an MLflow tracking server answers, asked before a study creates anything."""

from __future__ import annotations

import urllib.error
import urllib.request

#: Seconds to wait for a tracking server before calling it unreachable.
SERVER_TIMEOUT_S = 10


def check_tracking_server(uri: str, timeout_s: float = SERVER_TIMEOUT_S) -> None:
    """Ask the MLflow server at ``uri`` for its health page.

    Args:
        uri: ``http://host:port`` (a path prefix is kept).
        timeout_s: seconds to wait for the answer.

    Raises:
        ValueError: the server does not answer, or answers with an error; the
            message names ``tracking_uri``.
    """
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:
            reply.read(64)
    except urllib.error.HTTPError as error:
        raise ValueError(f"tracking_uri: the MLflow server at {uri} answered {error.code} "
                         f"{error.reason} to {url}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ValueError(f"tracking_uri: cannot reach an MLflow server at {uri}: {reason}") from None
