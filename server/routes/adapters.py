"""Adapter management: list (API key), load and unload (admin key)."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import AdminKey, ApiKey, RuntimeDep
from ..registry import AdapterEntry
from ..schemas import AdapterCalibration, AdapterInfo, AdapterList, LoadAdapterRequest, UnloadResponse

router = APIRouter(prefix="/v1/adapters", tags=["adapters"])


def adapter_info(entry: AdapterEntry, default_name: str) -> AdapterInfo:
    m = entry.manifest
    cal = m.calibration
    return AdapterInfo(name=entry.name, sha256=entry.sha256, default=entry.name == default_name,
                       base_model=m.base_model.ref, labels=[lab.name for lab in m.labels], created=m.created,
                       loaded_at=entry.loaded_at, metrics=m.metrics,
                       calibration=AdapterCalibration(**cal.model_dump(
                           include={"threshold", "uncertain_low", "uncertain_high", "temperature"})))


@router.get("", response_model=AdapterList, dependencies=[ApiKey])
async def list_adapters(rt: RuntimeDep) -> AdapterList:
    return AdapterList(data=[adapter_info(e, rt.registry.default_name) for e in rt.registry.list()])


@router.post("", response_model=AdapterInfo, status_code=201, dependencies=[AdminKey])
async def load_adapter(body: LoadAdapterRequest, rt: RuntimeDep) -> AdapterInfo:
    entry = await rt.registry.load(body.path, body.name)
    return adapter_info(entry, rt.registry.default_name)


@router.delete("/{name}", response_model=UnloadResponse, dependencies=[AdminKey])
async def unload_adapter(name: str, rt: RuntimeDep) -> UnloadResponse:
    await rt.registry.unload(name)
    return UnloadResponse(name=name)
