"""One error shape for the whole API: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    def __init__(
        self, status_code: int, code: str, message: str, details: Any = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details


def not_found(kind: str, key: object) -> ApiError:
    return ApiError(status.HTTP_404_NOT_FOUND, "not_found", f"{kind} {key} not found")


def _body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(
            _body(error.code, error.message, error.details),
            status_code=error.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(
        _request: Request, error: RequestValidationError
    ) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in item["loc"]), "message": item["msg"]}
            for item in error.errors()
        ]
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse(
            _body("invalid_request", f"invalid request: {message}", problems),
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if error.status_code == 404 else "http_error"
        return JSONResponse(
            _body(code, str(error.detail)), status_code=error.status_code
        )
