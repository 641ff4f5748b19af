"""The review app's routes, one APIRouter per area; `common` holds what they share."""

from . import admin, auth, guidelines, ranking, review, site

ROUTERS = (site.router, auth.router, review.router, guidelines.router, ranking.router,
           admin.router)
