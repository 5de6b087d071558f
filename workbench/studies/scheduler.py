"""The one scheduler: what starts, and when. Nothing else starts a run.

`tick` is called by the GUI's poll, by the CLI (`train`, `resume`, the `--wait` loops) and by a
worker whose run just ended (so runs and studies go on headless). Each tick records workers
that died, moves studies along (`advance`: a member's run is queued once all its parent runs
have finished) and starts queued runs, oldest first, under one rule: at most the store's
`max_concurrent` runs on this host, and at most a study's own `parallel` of its runs. A run is
claimed in the store by one conditional UPDATE that counts and claims together, so two
schedulers (a window and a finishing worker, say) never exceed the limit.

A parent that failed or was cancelled blocks its dependants with the reason; resuming that
parent to the end unblocks them. Claiming a member and inserting its run is one transaction,
so two schedulers never make the same run twice.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from workbench import paths
from workbench.errors import WorkbenchError
from workbench.jobs.runner import Runner, cancel_run, resume_run
from workbench.jobs.submit import prepare_config
from workbench.store import RESUMABLE, RunStatus

if TYPE_CHECKING:
    from workbench.store import Run, Store, StudyMember

WAITING, BLOCKED, READY = "pending", "blocked", "ready"
OPEN = (WAITING, BLOCKED)  # states a scheduler may change; "created" is final
STALLED = "waiting:"  # the note of a member whose parent was interrupted: nothing moves until a resume


def advance(store: Store, study_id: int | None = None, *, blocked: bool = False) -> list[int]:
    """Queue the runs of waiting members whose parents have all finished, and note why the others
    wait or are blocked; the ids of the runs queued. Blocked members are looked at again only
    with `blocked` (when a run ends): a runner's poll, twice a second, leaves them be."""
    open_members = store.study_members(study_id, states=OPEN if blocked else (WAITING,))
    if not open_members:
        return []
    studies = {sid: store.get_study(sid) for sid in {m.study_id for m in open_members}}
    members = {m.id: m for sid in studies for m in store.study_members(sid)}
    wanted = {ref.get("run") or members[ref["member"]].run_id for m in open_members for ref in m.parents.values()}
    runs = store.runs_by_id([r for r in wanted if r])
    created = []
    for member in open_members:
        state, note, parents = _readiness(member, members, runs)
        if state == READY:
            try:
                cfg = prepare_config(store, member.method, overrides=member.config, parents=parents)
            except WorkbenchError as exc:
                state, note = BLOCKED, f"not started: {exc}"
        if state != READY:
            if (state, note) != (member.state, member.note):
                store.set_member_state(member.id, state, note, was=OPEN)
            continue
        run = store.create_member_run(member.id, member.method, cfg.to_dict(), parents=parents,
                                      name=f"{studies[member.study_id].name} · {member.name}",
                                      tags=f"study:{member.study_id}")
        if run is not None:  # members later in this pass (its dependants) see the run
            created.append(run.id)
            members[member.id].state, members[member.id].run_id, runs[run.id] = "created", run.id, run
    return created


def _readiness(member: StudyMember, members: dict[int, StudyMember],
               runs: dict[int, Run]) -> tuple[str, str, dict[str, int]]:
    """(state, note, parent run ids): ready when every parent run has finished."""
    waiting, parents = "", {}
    for role, ref in member.parents.items():
        parent = members.get(ref.get("member", -1))
        if parent is not None and parent.state != "created":
            if parent.state == BLOCKED:
                return BLOCKED, f"not started: its {role} ({parent.name}) was not started", {}
            waiting = waiting or f"waiting for its {role} ({parent.name})"
            continue
        run_id = ref["run"] if parent is None else parent.run_id
        run = runs.get(run_id) if run_id else None
        if run is None:
            return BLOCKED, (f"not started: its {role}'s run was deleted; `workbench study resume "
                             f"{member.study_id}` makes it again"), {}
        status = RunStatus(run.status)
        if status in (RunStatus.FAILED, RunStatus.CANCELLED):
            reason = (run.error or "").strip().splitlines()[-1:] or [""]
            return BLOCKED, (f"not started: its {role}, run {run.id}, {status}" + (f" ({reason[0]})" if reason[0] else "")
                             + f"; `workbench resume {run.id}` and it goes on"), {}
        if status == RunStatus.INTERRUPTED:
            waiting = waiting or f"{STALLED} its {role}, run {run.id}, was interrupted; `workbench resume {run.id}`"
        elif status != RunStatus.FINISHED:
            waiting = waiting or f"waiting for its {role}, run {run.id} ({status})"
        parents[role] = run.id
    return (WAITING, waiting, {}) if waiting else (READY, "", parents)


def tick(store: Store, runner: Runner, *, run_ended: bool = False, reap: bool = True, here: bool = True) -> list[int]:
    """Record dead workers, advance studies, start what may start; the ids of runs whose status
    changed. `run_ended`: a run has just ended, so blocked study members are looked at again.
    `here`: runs for this machine may start here (not on a cluster job's node)."""
    changed = runner.reap() if reap else []
    changed += advance(store, blocked=run_ended)
    return list(dict.fromkeys(changed + start_queued(store, runner, here=here)))  # a run queued and started: once


def start_queued(store: Store, runner: Runner, *, here: bool = True) -> list[int]:
    """Claim and launch queued runs, oldest first, while the host's limit and each study's
    `parallel` allow, and send the runs for a cluster to its queue (the host's limit aside); the
    ids started or sent. Not `here`: only the cluster's runs are sent (a finished job's node
    would start the others inside that job, which ends with their workers in it)."""
    queued = store.list_runs(status=RunStatus.QUEUED)
    if not queued:
        return []
    host, limit = paths.host(), store.max_concurrent()
    study_of = {}
    for run in queued:
        member = store.member_of_run(run.id)
        if member is not None:
            study_of[run.id] = member.study_id
    parallel = {sid: store.get_study(sid).parallel for sid in set(study_of.values())}
    started = []
    for run in queued:
        sid = study_of.get(run.id)
        if run.job_id is not None:
            continue  # in a cluster's queue: its scheduler starts it
        if run.config.get("executor", "local") != "local":
            if store.claim_submission(run.id, study_id=sid, study_limit=parallel.get(sid)):
                runner.submit(run.id)
                started.append(run.id)
            continue
        if not here:
            continue
        if token := store.claim_run(run.id, host=host, limit=limit, study_id=sid, study_limit=parallel.get(sid)):
            runner.launch(run.id, token)
            started.append(run.id)
        elif store.running_on(host) >= limit:
            break  # the host is full; a study's own limit only holds back that study's runs
    return started


def wait_for(store: Store, runner: Runner, run_id: int, timeout: float | None = None, interval: float = 0.5,
             on_poll: Callable[[Run], None] | None = None) -> RunStatus:
    """Tick until the run reaches a final status; `on_poll` sees the run row each time."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        tick(store, runner)
        run = store.get_run(run_id)
        if on_poll:
            on_poll(run)
        status = RunStatus(run.status)
        if status.is_final:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {status} after {timeout} s")
        time.sleep(interval)


def cancel_study(store: Store, study_id: int, grace: float = 10.0) -> list[int]:
    """Stop a study: no new runs, its queued and running runs cancelled; the ids cancelled."""
    store.set_study_status(study_id, "cancelled")  # from here on no scheduler claims its members
    cancelled, members = [], store.study_members(study_id)
    for member in members:
        if member.state != "created":
            store.set_member_state(member.id, BLOCKED, "not started: the study was cancelled", was=OPEN)
    runs = store.runs_by_id([m.run_id for m in members if m.run_id])
    for run in runs.values():
        if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
            try:
                if cancel_run(store, run.id, grace) == RunStatus.RUNNING:  # a runner started it meanwhile
                    cancel_run(store, run.id, grace)
            except WorkbenchError:
                if RunStatus(store.get_run(run.id).status).is_final:
                    continue  # it ended between the read and the cancel: nothing to stop
                raise
            cancelled.append(run.id)
    return cancelled


def resume_study(store: Store, study_id: int) -> list[int]:
    """Go on with a stopped or cancelled study: its failed, cancelled and interrupted runs are
    queued again (each continues from its checkpoint), blocked members are looked at again, and
    members whose run was deleted get a new one."""
    store.set_study_status(study_id, "active")
    members = store.study_members(study_id)
    runs = store.runs_by_id([m.run_id for m in members if m.run_id])
    resumed = [resume_run(store, r.id).id for r in runs.values() if r.status in RESUMABLE]
    for member in members:
        if member.state == BLOCKED:  # looked at afresh: its parent may be going again
            store.set_member_state(member.id, WAITING, "", was=[BLOCKED])
        elif member.state == "created" and member.run_id is None:  # its run was deleted: make it again
            store.set_member_state(member.id, WAITING, "", was=["created"])
    return resumed + advance(store, study_id)
