"""Appointment booking: schedules, slots, holds, bookings, sanctions, waitlist."""
