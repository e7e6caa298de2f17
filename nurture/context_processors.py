from django.conf import settings


def organisation(request):
    return {
        "org": {
            "name": settings.NURTURE_ORG_NAME,
            "address": settings.NURTURE_ORG_ADDRESS,
            "helpline": settings.NURTURE_ORG_HELPLINE,
            "website": settings.NURTURE_ORG_WEBSITE,
        }
    }
