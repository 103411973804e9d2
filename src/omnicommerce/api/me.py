"""Routes (stub until written)."""

from fastapi import APIRouter

router = APIRouter()
