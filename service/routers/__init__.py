"""One APIRouter per resource of the service."""
