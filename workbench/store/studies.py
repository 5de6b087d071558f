"""The store's queries of studies, their stages and members (a part of `Store`)."""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

from sqlalchemy import delete, select, update

from workbench.errors import StoreError
from workbench.store.schema import Run, Study, StudyMember, StudyStage


class StudyQueries:
    def create_study(self, *, name: str, template: str, budget: str, spec: Mapping[str, Any], parallel: int,
                     stages: Sequence[Mapping[str, Any]], members: Sequence[Mapping[str, Any]]) -> Study:
        """Insert a study, its stages and its (pending) members in one transaction. A member names
        its stage by `stage` (a stage name) and member parents as {"member": index in `members`}."""
        with self.session() as s:
            study = Study(name=name, template=template, budget=budget, spec=dict(spec), parallel=parallel,
                          status="active", created_at=time.time())
            s.add(study)
            s.flush()
            if not name:
                study.name = f"{template or 'sweep'}-{study.id}"
            stage_ids = {}
            for position, stage in enumerate(stages):
                row = StudyStage(study_id=study.id, position=position, **stage)
                s.add(row)
                s.flush()
                stage_ids[stage["name"]] = row.id
            member_ids: list[int] = []
            for m in members:
                parents = {role: {"member": member_ids[ref["member"]]} if "member" in ref else dict(ref)
                           for role, ref in m["parents"].items()}
                row = StudyMember(study_id=study.id, stage_id=stage_ids[m["stage"]], point=m["point"],
                                  values=dict(m["values"]), name=m["name"], method=m["method"],
                                  config=dict(m["config"]), parents=parents, state="pending")
                s.add(row)
                s.flush()
                member_ids.append(row.id)
            return study

    def get_study(self, study_id: int) -> Study:
        with self.session() as s:
            study = s.get(Study, study_id)
            if study is None:
                raise StoreError(f"there is no study {study_id} in {self.label}; `workbench study list` lists them")
            return study

    def list_studies(self) -> list[Study]:
        with self.session() as s:
            return list(s.scalars(select(Study).order_by(Study.id)))

    def study_stages(self, study_id: int) -> list[StudyStage]:
        with self.session() as s:
            return list(s.scalars(select(StudyStage).where(StudyStage.study_id == study_id)
                                  .order_by(StudyStage.position)))

    def study_members(self, study_id: int | None = None, *, states: Sequence[str] = ()) -> list[StudyMember]:
        """Members of one study (or of every study); with `states`, only members in those states
        in active studies (what the scheduler looks at)."""
        query = select(StudyMember).order_by(StudyMember.id)
        if study_id is not None:
            query = query.where(StudyMember.study_id == study_id)
        if states:
            active = select(Study.id).where(Study.status == "active")
            query = query.where(StudyMember.state.in_(list(states)), StudyMember.study_id.in_(active))
        with self.session() as s:
            return list(s.scalars(query))

    def member_of_run(self, run_id: int) -> StudyMember | None:
        with self.session() as s:
            return s.scalar(select(StudyMember).where(StudyMember.run_id == run_id))

    def set_member_state(self, member_id: int, state: str, note: str, *, was: Sequence[str]) -> bool:
        """Set a member's state and note only if its state is still one of `was` (a scheduler that
        read it earlier never undoes another's claim); True if it changed."""
        with self.session() as s:
            result = s.execute(update(StudyMember).where(StudyMember.id == member_id, StudyMember.state.in_(list(was)))
                               .values(state=state, note=note))
            return result.rowcount == 1

    def create_member_run(self, member_id: int, method: str, config: Mapping[str, Any], *, name: str,
                          parents: Mapping[str, int], tags: str) -> Run | None:
        """Claim a pending or blocked member of an active study and insert its queued run, in one
        transaction; None if another process claimed it first or the study was cancelled meanwhile
        (two schedulers never make the same run twice)."""
        active = select(Study.id).where(Study.status == "active")
        with self.session() as s:
            # the member's row locked, or skipped if another scheduler holds it (PostgreSQL; SQLite
            # holds its one write lock already); the UPDATE then re-checks its state
            if s.scalar(select(StudyMember.id).where(StudyMember.id == member_id)
                        .with_for_update(skip_locked=True)) is None:
                return None
            claimed = s.execute(update(StudyMember).where(StudyMember.id == member_id, StudyMember.state != "created",
                                                          StudyMember.study_id.in_(active))
                                .values(state="created", note=""))
            if claimed.rowcount != 1:
                return None
            run = self._insert_run(s, method, config, name, parents, tags)
            s.execute(update(StudyMember).where(StudyMember.id == member_id).values(run_id=run.id))
            return run

    def set_study_status(self, study_id: int, status: str) -> None:
        with self.session() as s:
            s.execute(update(Study).where(Study.id == study_id).values(status=status))

    def delete_study(self, study_id: int) -> None:
        """Forget a study (stages and members); its runs stay, as ordinary runs."""
        with self.session() as s:
            s.execute(delete(StudyMember).where(StudyMember.study_id == study_id))
            s.execute(delete(StudyStage).where(StudyStage.study_id == study_id))
            s.execute(delete(Study).where(Study.id == study_id))
