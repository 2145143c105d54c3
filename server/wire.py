"""Between the wire protocol (`phishlens.clients.protocol`, shared with the clients) and the services:
request items → the input pipeline's types, service results (dataclasses) → response models.

The protocol stays pure pydantic (no training, no server imports); these conversions are the server's.
"""

from __future__ import annotations

from phishlens.clients import protocol as W
from phishlens.explain.drift import TypicalWord
from phishlens.training.contract import pipeline as P

from .registry import AdapterEntry
from .services.classify import Classification
from .services.drift import AdapterDrift, FeatureDrift, Prevalence
from .services.explain import ExplainOutcome
from .services.feedback import FeedbackReport, LabelIn
from .services.probe import ProbeOutcome


# -- requests ---------------------------------------------------------------------------------------------
def pipeline_input(item: W.InputItem) -> P.InputItem:
    """The wire item as the input pipeline's type."""
    if isinstance(item, W.EmailInput):
        return P.EmailInput(item.raw)
    if isinstance(item, W.SmsInput):
        return P.SmsInput(item.sms, item.sender)
    if isinstance(item, W.UrlInput):
        return P.UrlInput(item.url)
    return item


def pipeline_inputs(items: list[W.InputItem]) -> list[P.InputItem]:
    return [pipeline_input(i) for i in items]


def feedback_labels(body: W.FeedbackRequest) -> list[LabelIn]:
    return [LabelIn(x.index, x.label, x.adapter) for x in body.labels]


# -- responses --------------------------------------------------------------------------------------------
def adapter_ref(name: str, sha256: str) -> W.AdapterRef:
    return W.AdapterRef(name=name, sha256=sha256)


def email_parse(e: P.EmailSummary | None) -> W.EmailParse | None:
    if e is None:
        return None
    attachments = [
        W.AttachmentInfo(filename=a.filename, content_type=a.content_type, size=a.size) for a in e.attachments
    ]
    return W.EmailParse(
        body_type=e.body_type,
        attachments=attachments,
        forwarded=e.forwarded,
        parts=e.parts,
        defects=list(e.defects),
    )


def classify_result(c: Classification, return_text: bool = False) -> W.ClassifyResult:
    ood = (
        None
        if c.ood is None
        else W.OodInfo(score=c.ood.score, flagged=c.ood.flagged, threshold=c.ood.threshold)
    )
    return W.ClassifyResult(
        index=c.index,
        label=c.label,  # type: ignore[arg-type]
        probs={"phishing": c.p_phishing, "legitimate": 1.0 - c.p_phishing},
        score=c.p_phishing,
        uncertain=c.uncertain,
        truncated=c.truncated,
        adapter=adapter_ref(c.adapter, c.adapter_sha256),
        style=c.style,
        style_source=c.style_source,  # type: ignore[arg-type]
        text=c.text if return_text else None,
        email=email_parse(c.email),
        ood=ood,
    )


def adapter_info(entry: AdapterEntry, default_name: str) -> W.AdapterInfo:
    m = entry.manifest
    cal = m.calibration
    return W.AdapterInfo(
        name=entry.name,
        sha256=entry.sha256,
        default=entry.name == default_name,
        base_model=m.base_model.ref,
        labels=[lab.name for lab in m.labels],
        created=m.created,
        loaded_at=entry.loaded_at,
        metrics=m.metrics,
        calibration=W.AdapterCalibration(
            threshold=cal.threshold,
            uncertain_low=cal.uncertain_low,
            uncertain_high=cal.uncertain_high,
            temperature=cal.temperature,
        ),
    )


def explain_response(
    out: ExplainOutcome, html: str | None = None, return_text: bool = False
) -> W.ExplainResponse:
    a = out.attribution
    inp = out.input
    return W.ExplainResponse(
        id=out.id,
        adapter=adapter_ref(out.adapter, out.adapter_sha256),
        label=out.label,  # type: ignore[arg-type]
        uncertain=out.uncertain,
        truncated=out.truncated,
        granularity=a.granularity,
        output_space=a.output_space,  # type: ignore[arg-type]
        tokens=a.tokens,
        attributions=a.attributions,
        base_value=a.base_value,
        prediction=a.prediction,
        additivity_error=a.additivity_error,
        evaluations=a.evaluations,
        max_evals=a.max_evals,
        masked_text=a.masked_text,
        seconds=round(out.seconds, 4),
        html=html,
        style=inp.style,
        style_source=inp.style_source,  # type: ignore[arg-type]
        text=inp.text if return_text else None,
        email=email_parse(inp.email),
    )


def probe_response(o: ProbeOutcome, return_text: bool = False) -> W.ProbeResponse:
    inp = o.input
    assert inp is not None  # the service always sets it
    return W.ProbeResponse(
        style=inp.style,
        style_source=inp.style_source,  # type: ignore[arg-type]
        text=inp.text if return_text else None,
        email=email_parse(inp.email),
        adapter=adapter_ref(o.adapter, o.adapter_sha256),
        layers=o.layers,
        probes=o.probes,
        probe_accuracy=o.probe_accuracy,
        logit_lens=o.logit_lens,
        score=o.p_phishing,
        label=o.label,
        uncertain=o.uncertain,
        truncated=o.truncated,  # type: ignore[arg-type]
        usage=W.Usage(texts=1, prompt_tokens=o.n_prompt_tokens),
    )


def feedback_response(r: FeedbackReport) -> W.FeedbackResponse:
    data = [
        W.FeedbackResult(
            index=i.index,
            adapter=i.adapter,
            label=i.label,  # type: ignore[arg-type]
            predicted=i.predicted,
            outcome=i.outcome,
            status=i.status,
        )  # type: ignore[arg-type]
        for i in r.items
    ]
    return W.FeedbackResponse(
        request_id=r.request_id,
        data=data,
        recorded=r.count("recorded"),
        duplicates=r.count("duplicate"),
        conflicts=r.count("conflict"),
        stale=r.count("stale"),
    )


def _feature(f: FeatureDrift) -> W.FeatureStat:
    return W.FeatureStat(
        feature=f.feature, statistic=f.statistic, threshold=f.threshold, over=f.over, ks=f.ks
    )


def _word(w: TypicalWord) -> W.WordShift:
    return W.WordShift(
        word=w.word, live_share=w.live_share, reference_share=w.reference_share, log_odds=w.log_odds
    )


def _prevalence(p: Prevalence | None) -> W.PrevalenceInfo | None:
    if p is None:
        return None
    return W.PrevalenceInfo(
        estimate=p.estimate, low=p.low, high=p.high, calibration=p.calibration, texts=p.texts
    )


def drift_info(d: AdapterDrift) -> W.AdapterDriftInfo:
    return W.AdapterDriftInfo(
        adapter=d.adapter,
        sha256=d.sha256,
        status=d.status,  # type: ignore[arg-type]
        alert=d.alert,
        prevalence=_prevalence(d.prevalence),
        window_size=d.window_size,
        window_texts=d.window_texts,
        texts_seen=d.texts_seen,
        calibrated_window=d.calibrated_window,
        features=[_feature(f) for f in d.features],
        most_shifted=d.most_shifted[:5],
        typical_live=[_word(w) for w in d.typical_live],
        typical_reference=[_word(w) for w in d.typical_reference],
        evaluated_at=d.evaluated_at,
        detail=d.detail,
    )
