"""One Label Studio connection (label-studio-sdk 2.x): SDK calls whose failures become one-line
errors. The API key is never printed, logged or written: errors name the server and the problem,
not the request."""

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from tagger.cli import UserError

PAGE = 500  # tasks per request when reading or writing many


def connect(url: str, api_key: str | None) -> LabelStudio:
    if not api_key:
        raise UserError("no Label Studio API key: set LABEL_STUDIO_API_KEY or pass --api_key")
    try:
        client = LabelStudio(base_url=url.rstrip("/"), api_key=api_key, timeout=60)
    except Exception as error:  # the SDK exchanges the token at once; hide its message
        raise UserError(f"{url}: cannot sign in to Label Studio ({type(error).__name__}); "
                        "check the URL and that the key is a valid personal access token") from None
    call(url, client.users.whoami)
    return client


def call(url: str, method, *args, **kwargs):
    """One SDK request; network and HTTP failures become one-line errors without the key."""
    try:
        return method(*args, **kwargs)
    except ApiError as error:
        if error.status_code in (401, 403):
            raise UserError(f"{url}: the API key was refused (wrong, expired or revoked)") from None
        if error.status_code == 404:
            raise UserError(f"{url}: not found (check the project id)") from None
        raise UserError(f"{url}: Label Studio answered HTTP {error.status_code}") from None
    except (httpx.HTTPError, OSError) as error:
        raise UserError(f"{url}: cannot reach Label Studio ({type(error).__name__})") from None


def iterate(url: str, chunks):
    """Chunks of a streamed download or pages of a listing; a connection lost midway is a clear error."""
    try:
        yield from chunks
    except (httpx.HTTPError, OSError) as error:
        raise UserError(f"{url}: the transfer was interrupted ({type(error).__name__}); nothing was written") from None
