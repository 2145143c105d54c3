"""Adapter management: list (API key), load and unload (admin key)."""

from __future__ import annotations

from fastapi import APIRouter

from phishlens.clients.protocol import AdapterInfo, AdapterList, LoadAdapterRequest, UnloadResponse

from ..deps import AdminKey, ApiKey, RuntimeDep
from ..wire import adapter_info

router = APIRouter(prefix="/v1/adapters", tags=["adapters"])


@router.get("", response_model=AdapterList, dependencies=[ApiKey])
async def list_adapters(rt: RuntimeDep) -> AdapterList:
    return AdapterList(data=[adapter_info(e, rt.registry.default_name) for e in rt.registry.list()])


@router.post("", response_model=AdapterInfo, status_code=201, dependencies=[AdminKey])
async def load_adapter(body: LoadAdapterRequest, rt: RuntimeDep) -> AdapterInfo:
    entry = await rt.registry.load(body.path, body.name, replace=body.replace)
    return adapter_info(entry, rt.registry.default_name)


@router.delete("/{name}", response_model=UnloadResponse, dependencies=[AdminKey])
async def unload_adapter(name: str, rt: RuntimeDep) -> UnloadResponse:
    await rt.registry.unload(name)
    return UnloadResponse(name=name)
