"""inventory HTTP routes (stub until written)."""

from fastapi import APIRouter

router = APIRouter()
