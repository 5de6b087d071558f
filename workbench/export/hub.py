"""Pushing an exported folder to the Hugging Face Hub (`workbench export RUN --push ORG/NAME`).

The folder is uploaded in one commit (`HfApi.upload_folder`), so the Hub repository gets all of it
or nothing. huggingface_hub comes with timm; the token is the user's (`hf auth login` or HF_TOKEN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from workbench.errors import WorkbenchError


def push(folder: Path, repo_id: str, log: Callable[[str], None] = print) -> str:
    """Upload `folder` to the Hub model repository `repo_id` (created, private, if missing); its URL."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError

    if "/" not in repo_id:
        raise WorkbenchError(f"{repo_id!r} is not a Hub repository name; use ORG/NAME (your user name or an "
                             f"organisation, then the model's name)")
    kept = f"the export itself is complete in {folder}; nothing was pushed"
    if constants.HF_HUB_OFFLINE:
        raise WorkbenchError(f"cannot push to the Hub: this machine is offline (HF_HUB_OFFLINE is set); {kept}. "
                             f"Push it later from an online machine: hf upload {repo_id} {folder}")
    api = HfApi()
    log(f"pushing {folder} to {constants.ENDPOINT}/{repo_id} …")
    try:
        api.create_repo(repo_id, repo_type="model", private=True, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="model",
                                   commit_message="Upload from ViT Workbench")
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        why = ("the Hub needs a write token: run `hf auth login` or set HF_TOKEN" if status in (401, 403)
               else f"the Hub answered {status}: {exc}")
        raise WorkbenchError(f"cannot push to {repo_id}: {why}; {kept}") from None
    except Exception as exc:
        # no network, DNS, a refused connection: httpx's ConnectError, ConnectTimeout, … (huggingface_hub's client)
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise WorkbenchError(f"cannot reach the Hub ({type(exc).__name__}: {exc}): is this machine offline? "
                                 f"{kept}") from None
        raise
    return str(commit.commit_url)
