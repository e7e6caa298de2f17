from nurture import emails


def organisation(request):
    # The same organisation details the emails print.
    return {"org": emails.organisation()}
