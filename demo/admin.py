from __future__ import annotations

from django.contrib import admin

from journeys.admin import ReadOnlyAdmin

from .models import CoreAccount, CoreCard, CoreCustomer

admin.site.register([CoreCustomer, CoreAccount, CoreCard], ReadOnlyAdmin)
