from nurture.emails.layout import organisation as organisation_details


def organisation(request):
    # The same organisation details the emails print.
    return {"org": organisation_details()}
