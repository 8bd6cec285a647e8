"""The whole study as one resumable command: GANs, generation, every setting x seed, Table 1.

Every stage runs as an MLflow run nested under one parent run. Before launching a stage the
study looks for a FINISHED run with the same key: entry point, code version, parameters
(normalised, since MLflow returns params as strings) and upstream run ids. Found: reused.
Failed, interrupted or changed: run again. So an interrupted study continues where it
stopped, a second identical call launches nothing new, and a changed parameter reruns
exactly the runs that depend on it.

The stages form a graph (`study.nodes`); `study.graph.walk` runs each stage once its upstream
is done, on the executor the config asks for (`study.executors`: in this process one after
another, the default; stage processes; Ray tasks). Reuse (`study.ledger`, `study.reuse`),
nesting, failure recording and the table are the same whichever runs the stages. With a time
budget, a seed starts only while its pair can still finish in it (`study.pacing`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pneumonia_aug import tracking
from pneumonia_aug.config import StudyConfig
from pneumonia_aug.contract import (
    COMPARE,
    GAN_QUALITY,
    STUDY,
    STUDY_RUNS_ARTIFACT,
    TABLE_MD,
    TAG_GAN_SEEDS,
)
from pneumonia_aug.data.kermany import check_layout, resolve_data_dir
from pneumonia_aug.stages import describe
from pneumonia_aug.stages.interrupts import sigterm_as_interrupt
from pneumonia_aug.stages.tags import quality_settled, stage_tags
from pneumonia_aug.study.executors import make_executor
from pneumonia_aug.study.graph import Node, StageCall, walk
from pneumonia_aug.study.ledger import Study
from pneumonia_aug.study.nodes import study_graph
from pneumonia_aug.study.pacing import Pacing

log = logging.getLogger(__name__)


def _runner(study: Study, executor, pacing: Pacing) -> Callable[[Node, dict], object]:
    """What the walk does with a node: its value, or its stage reused or launched; nothing for
    a node of a seed the time budget leaves out."""
    def run(node: Node, results: dict):
        if not pacing.may_start(node):
            return None
        try:
            made = node.make(results)
            if not isinstance(made, StageCall):
                return made  # the feature network, or None: an upstream stage failed
            if made.stage == GAN_QUALITY:  # measured into the GAN run, once per network
                if quality_settled(made.config.gan_run_id, made.config.feature_model_uri):
                    return made.config.gan_run_id
                return study.measure(made.label, lambda: executor.launch(made, ""))
            launch = made.run_here or (lambda run_id: executor.launch(made, run_id))
            return study.stage(made.stage, made.label, made.params, made.upstream, launch)
        finally:
            pacing.done(node)

    return run


def run_study(cfg: StudyConfig) -> str:
    """Run or resume the study; return the Markdown table."""
    check_layout(resolve_data_dir(cfg.data_dir))  # before the run: a user error
    executor = make_executor(cfg.executor, cfg.max_parallel)  # before the run: Ray missing
    params = {k: v for k, v in cfg.to_dict().items() if k != "output_dir"}
    resolved = {"seeds_resolved": ",".join(map(str, cfg.seed_list)),
                "settings_resolved": ",".join(s.name for s in cfg.setting_list),
                "gan_seeds_resolved": cfg.design}
    started = describe.study_started(cfg.profile, [s.name for s in cfg.setting_list],
                                     cfg.seed_list, cfg.data_dir, cfg.design)
    # SIGTERM like Ctrl-C (a scheduler, the GPU kit's time budget): the walk stops every stage
    # (their runs end KILLED), then this one.
    with sigterm_as_interrupt(), tracking.start_run(
            cfg.experiment_name, run_name=f"{STUDY}-{cfg.profile}",
            tags=stage_tags(STUDY, profile=cfg.profile, **{TAG_GAN_SEEDS: cfg.design}),
            description=started) as parent:
        tracking.log_params(params | resolved)
        study = Study(cfg.experiment_name, parent.info.run_id)
        executor.parent_run_id = parent.info.run_id
        nodes = study_graph(cfg, study)
        pacing = Pacing.for_study(cfg, nodes, executor.width)
        try:
            results = walk(nodes, _runner(study, executor, pacing), executor.width,
                           executor.stop)
        finally:
            executor.close()
        table = (tracking.read_text_artifact(results[COMPARE], TABLE_MD)
                 if results[COMPARE] else "")
        describe.describe_study(study.study_run_id, started, study.used, study.failed, table)
        tracking.log_dict({"used": study.used, "failed": study.failed,
                           "seeds_not_started": pacing.left_out}, STUDY_RUNS_ARTIFACT)
        tracking.log_metrics({"runs_launched": study.launched, "runs_used": len(study.used),
                              "stages_failed": len(study.failed),
                              "seeds_not_started": len(pacing.left_out)})
        log.info("[study] %d stage runs used, %d launched now, %d failed", len(study.used),
                 study.launched, len(study.failed))
        if pacing.left_out:
            log.warning("[study] seeds not started (time budget): %s",
                        ", ".join(map(str, pacing.left_out)))
        if study.failed:
            log.warning("[study] failed stages:\n  %s", "\n  ".join(study.failed))
        return table
