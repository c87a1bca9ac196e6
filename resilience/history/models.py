"""The history store's tables (SQLAlchemy 2 declarative models).

One row per run (``runs``), one per SLO verdict of a run (``measurements``), one per gate
(``gates``) and one per SLO comparison a gate made against its baseline (``comparisons``).
The schema is created and changed only by the Alembic migrations in ``migrations/versions``;
a test checks that the migrations produce exactly these tables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["Base", "Comparison", "Gate", "Measurement", "Run"]


class Base(DeclarativeBase):
    """Declarative base of the history tables."""


class Gate(Base):
    """One ``resilience gate``: its outcome, score, baseline and versions."""

    __tablename__ = "gates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gate_id: Mapped[str] = mapped_column(String(200), unique=True)
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(20))
    exit_code: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    target: Mapped[str] = mapped_column(String(40))
    profile: Mapped[str | None] = mapped_column(String(40))
    baseline: Mapped[str | None] = mapped_column(String(200))
    release: Mapped[str | None] = mapped_column(String(200), index=True)
    suite_version: Mapped[str | None] = mapped_column(String(80))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    service_version: Mapped[str | None] = mapped_column(String(200))
    environment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    gate_dir: Mapped[str | None] = mapped_column(Text)

    runs: Mapped[list[Run]] = relationship(back_populates="gate")
    comparisons: Mapped[list[Comparison]] = relationship(back_populates="gate", cascade="all, delete-orphan")


class Run(Base):
    """One run of one experiment (a trial of a repeated run is a run too)."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_experiment_started", "experiment", "started_at"),
                      Index("ix_runs_scenario_started", "scenario", "started_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(200), unique=True)
    scenario: Mapped[str] = mapped_column(String(100))
    experiment: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(Text)
    target: Mapped[str] = mapped_column(String(40))
    profile: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))
    exit_code: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    aborted_by: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    fault_name: Mapped[str | None] = mapped_column(Text)
    fault_start: Mapped[float | None] = mapped_column(Float)
    fault_end: Mapped[float | None] = mapped_column(Float)
    load_shape: Mapped[str | None] = mapped_column(String(20))
    load_asked_eps: Mapped[float | None] = mapped_column(Float)
    load_achieved_eps: Mapped[float | None] = mapped_column(Float)
    load_acknowledged: Mapped[int | None] = mapped_column(Integer)
    load_failed: Mapped[int | None] = mapped_column(Integer)
    release: Mapped[str | None] = mapped_column(String(200), index=True)
    suite_version: Mapped[str | None] = mapped_column(String(80))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    service_version: Mapped[str | None] = mapped_column(String(200))
    environment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    errors: Mapped[list[str]] = mapped_column(JSON, default=list)
    trial_group: Mapped[str | None] = mapped_column(String(200), index=True)
    gate_pk: Mapped[int | None] = mapped_column(ForeignKey("gates.id", ondelete="SET NULL"), index=True)
    run_dir: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[float] = mapped_column(Float)

    gate: Mapped[Gate | None] = relationship(back_populates="runs")
    measurements: Mapped[list[Measurement]] = relationship(back_populates="run", cascade="all, delete-orphan")


class Measurement(Base):
    """One SLO verdict of a run: the value measured and the objective it was judged against."""

    __tablename__ = "measurements"
    __table_args__ = (Index("ix_measurements_slo_run", "slo", "run_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    slo: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(20))
    measured: Mapped[float | None] = mapped_column(Float)
    objective: Mapped[str | None] = mapped_column(String(100))
    unit: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)

    run: Mapped[Run] = relationship(back_populates="measurements")


class Comparison(Base):
    """One SLO of one scenario of a gate, compared with the gate's baseline."""

    __tablename__ = "comparisons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gate_pk: Mapped[int] = mapped_column(ForeignKey("gates.id", ondelete="CASCADE"), index=True)
    scenario: Mapped[str] = mapped_column(String(100))
    experiment: Mapped[str] = mapped_column(String(200))
    slo: Mapped[str] = mapped_column(String(100))
    verdict: Mapped[str] = mapped_column(String(30))
    p_value: Mapped[float | None] = mapped_column(Float)
    effect_size: Mapped[float | None] = mapped_column(Float)
    median_baseline: Mapped[float | None] = mapped_column(Float)
    median_candidate: Mapped[float | None] = mapped_column(Float)
    n_baseline: Mapped[int] = mapped_column(Integer)
    n_candidate: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)

    gate: Mapped[Gate] = relationship(back_populates="comparisons")
