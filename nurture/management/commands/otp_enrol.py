"""`manage.py otp_enrol USERNAME`: enrol a staff user's authenticator app for two-factor sign-in.

Prints the provisioning URI (otpauth://...) and the same as a QR code in the terminal; the
admin shows the QR code too (Django OTP Plugin → TOTP devices → the device → qrcode).
"""
from __future__ import annotations

import io

from django.core.management import BaseCommand, CommandError

from nurture.services.staff import EnrolError, staff_totp_enrol


class Command(BaseCommand):
    help = "Enrol a TOTP device (authenticator app) for a staff user and print its provisioning URI and QR code."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="A name for the device, e.g. 'work phone'.")
        parser.add_argument("--replace", action="store_true",
                            help="Remove the user's existing devices first (lost phone).")
        parser.add_argument("--no-qr", action="store_true", help="Print the URI only.")

    def handle(self, *args, username, name, replace, no_qr, **options):
        try:
            device = staff_totp_enrol(username=username, name=name, replace=replace)
        except EnrolError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Enrolled TOTP device #{device.pk} ({device.name}) for {username}.")
        self.stdout.write("Add it to an authenticator app with this URI (keep it secret, like a password):")
        self.stdout.write(device.config_url)
        if not no_qr:
            import qrcode

            qr = qrcode.QRCode(border=2)
            qr.add_data(device.config_url)
            out = io.StringIO()
            qr.print_ascii(out=out, invert=True)
            self.stdout.write(out.getvalue())
        self.stdout.write("Then sign in at the admin with the password and the 6-digit code the app shows.")
