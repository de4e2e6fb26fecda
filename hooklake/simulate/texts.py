"""What simulated people say: support-style phrase templates and made-up personal data.

Templates are filled from a per-conversation context (order number, product, date…), so a few
hundred templates give thousands of distinct, plausible messages without downloading anything.
Personal data is generated to *look* real to a redactor: card numbers pass the Luhn check and
IBANs pass the ISO 13616 mod-97 check, but none belongs to anyone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FIRST_NAMES = (
    "Jane", "María", "Lucas", "Aisha", "Tom", "Sofía", "Noah", "Emma", "Mateo", "Olivia",
    "Liam", "Chloé", "Javier", "Fatima", "Hugo", "Lena", "Marco", "Yuki", "Priya", "Omar",
    "Clara", "David", "Inés", "Pablo", "Hannah", "Ravi", "Elena", "Sam", "Nora", "Kwame",
    "Zoe", "Ahmed", "Lucía", "Finn", "Amara", "Diego", "Mia", "Jonas", "Leila", "Carlos",
)  # fmt: skip
LAST_NAMES = (
    "Doe", "García", "Smith", "Khan", "Baker", "Martínez", "Müller", "Rossi", "Dubois", "Silva",
    "Nguyen", "Johnson", "López", "Schmidt", "Costa", "Patel", "Fernández", "Brown", "Kowalski",
    "Sato", "Okafor", "Jensen", "Moreau", "Romero", "Novak", "Andersson", "Taylor", "Ruiz",
)  # fmt: skip
EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.es", "proton.me", "example.com", "gmx.de")
COUNTRIES = (
    "Spain", "United States", "United Kingdom", "Germany", "France", "Mexico", "Italy",
    "Portugal", "Netherlands", "Argentina", "Colombia", "India",
)  # fmt: skip
PRODUCTS = (
    "running shoes", "leather bag", "rain jacket", "wool scarf", "denim jacket", "sneakers",
    "backpack", "sunglasses", "winter boots", "yoga mat", "wireless earbuds", "water bottle",
    "linen shirt", "hoodie", "travel mug", "desk lamp",
)  # fmt: skip
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TIMES = ("9:00", "9:30", "10:15", "11:00", "12:30", "13:00", "17:45", "19:30", "20:00", "21:15")
DOCTORS = ("Dr. López", "Dr. Patel", "Dr. Jensen", "Dr. Moreau", "Dr. Okafor")
CARRIERS = ("SEUR", "DHL", "UPS", "Correos Express", "GLS")
STATUSES = (
    "out for delivery today", "at the local depot", "in transit", "ready for pickup",
    "delayed by one day at the carrier", "being packed in our warehouse",
)  # fmt: skip

# Customer phrasing glue: how people open, hedge and close a message.
HELLOS = ("", "", "", "Hi, ", "Hello, ", "Hey, ", "Good morning, ", "Hi there, ", "Hola, ")
TAILS = ("", "", "", ".", "!", "?", " please.", " thanks.", " thank you!", " 🙏", " asap please")

CUSTOMER_OPENERS = (
    "Hi", "Hello", "Hola", "Hey", "Good morning", "Good afternoon", "hi there", "Hello?",
    "Buenas tardes", "Hi, I need some help",
)  # fmt: skip
THANKS = (
    "Thanks!", "Thank you so much", "great, thanks", "ok thanks", "Perfect, thank you!",
    "Gracias!", "thx", "Cheers", "Awesome, that's all I needed", "Thanks, that helps a lot",
)  # fmt: skip
WAITING = (
    "ok, I'll wait", "sure", "Yes please", "ok", "fine", "no problem", "Thank you, I'll wait",
    "how long will it take?", "Is anyone there?", "hello?",
)  # fmt: skip
GOODBYES = (
    "No, that's all, thanks!", "That's everything, bye!", "No thanks", "all good now",
    "nope, thanks for your help", "Nothing else. Have a nice day!",
)  # fmt: skip
UNHAPPY = (
    "That doesn't answer my question", "This is not helpful at all", "still not working",
    "I already tried that", "I need to speak to a real person", "that's not what I asked",
    "this is the third time I'm writing about this", "Can I talk to someone please?",
)  # fmt: skip

# Bot phrasing.
GREETINGS = (
    "Hi there! 👋 Welcome to {brand}.", "Hello and welcome to {brand}!",
    "Hey! Thanks for reaching out to {brand}.", "Hi {first}! 👋 Good to see you again.",
    "Welcome to {brand} support.", "Hi! I'm the {brand} assistant 🤖",
)  # fmt: skip
INTROS = (
    "I can help you with most questions in a couple of minutes.",
    "I'm a bot, but I can get you to a human if you need one.",
    "Our team is available Monday to Friday, 9:00 to 19:00.",
    "Ask me anything about your orders, returns or account.",
)  # fmt: skip
MENU_TITLES = (
    "What do you need help with?", "How can I help you today?", "Please choose an option:",
    "What can I do for you?", "Pick a topic and I'll guide you.",
)  # fmt: skip
FREE_TEXT_ACKS = (
    "Thanks for the details! Let me help you with that.", "Got it, let me check.",
    "Thanks! I think I can help with that.", "Understood. Let me look into it.",
)  # fmt: skip
SATISFACTION = (
    "Did that answer your question?", "Was this helpful?", "Did that solve your problem?",
    "Is there anything else I can help you with?",
)  # fmt: skip
SATISFACTION_OPTIONS = ("Yes, thanks!", "No", "Talk to a human")
CLOSINGS = (
    "Great! Have a lovely day 😊", "Happy to help! Bye for now 👋", "Glad I could help!",
    "Perfect. You can write to us here anytime.", "You're welcome! Take care.",
)  # fmt: skip
SORRY = (
    "Sorry about that. Could you tell me a bit more?", "I'm sorry to hear that. What happened?",
    "Oh no, sorry! Can you describe the problem?",
)  # fmt: skip
HANDOVER = (
    "Let me connect you with one of our agents. It may take a few minutes.",
    "I'm passing you to a human colleague now. Please stay in the chat.",
    "One moment, I'm transferring you to our support team.",
    "Our team usually replies within 5 minutes. Someone will be with you shortly.",
)  # fmt: skip
FOLLOW_UP = (
    "We've passed this to our team and will email you within 24 hours.",
    "I've opened ticket #{ticket} for you. We'll be in touch soon.",
)  # fmt: skip
RATING_TITLE = ("How would you rate our service?", "How did we do today?")
RATING_OPTIONS = ("😀 Great", "😐 OK", "🙁 Bad")
UNKNOWN_REPLY = (
    "Sorry, I can only read text messages for now.",
    "I couldn't open that. Could you type your message instead?",
)  # fmt: skip

AGENT_GREETINGS = (
    "Hi {cname}, {agent} here 👋 I'm reading your conversation now.",
    "Hello! This is {agent} from the support team. How can I help?",
    "Hi {cname}! Thanks for waiting. Let me take a look.",
    "Hi! I'm {agent}, I'll take it from here.",
)  # fmt: skip
AGENT_CLOSINGS = (
    "Is there anything else I can help you with?", "Anything else I can do for you today?",
)  # fmt: skip
AGENT_BYES = (
    "Have a great day!", "Thanks for contacting us, bye!", "Take care 👋",
    "You're welcome. I'll close this chat now.",
)  # fmt: skip
# What an agent asks for, keyed by how the customer answers (see ``script.Script._handover``).
AGENT_ASKS = {
    "email": ("Could you confirm the email address on your account?", "What's your email?"),
    "phone": (
        "Can you give me a phone number where we can reach you?",
        "What's the best number to call you on?",
    ),
    "photo": ("Could you send me a photo of the problem?",),
}


@dataclass(frozen=True, slots=True)
class Topic:
    """One branch of a bot's menu and everything people say inside it.

    ``problem`` is how a customer describes it in free text, ``ask`` the bot's follow-up
    question, ``answer`` the customer's reply, ``resolve`` the bot's answer, and ``agent`` what
    a human agent says about it. ``photo`` topics ask the customer for an image.
    """

    label: str
    problem: tuple[str, ...]
    ask: tuple[str, ...]
    answer: tuple[str, ...]
    resolve: tuple[str, ...]
    agent: tuple[str, ...]
    photo: bool = False


# fmt: off
TOPICS: dict[str, Topic] = {
    "order_status": Topic(
        label="Track my order",
        problem=(
            "my order {order} hasn't arrived yet", "where is my order {order}",
            "I ordered {product} {n} days ago and still nothing",
            "the tracking for {order} hasn't moved since {day}",
            "can you tell me when {order} will arrive",
            "{carrier} says delivered but I don't have the package",
        ),
        ask=(
            "Sure! What's your order number? You'll find it in the confirmation email.",
            "Could you share your order number? It starts with AC.",
            "No problem. Which order is it about?",
        ),
        answer=(
            "{order}", "it's {order}", "order number {order}", "{order} I think",
            "I don't have it, I ordered {product} on {day}", "AC... wait, {order}",
        ),
        resolve=(
            "Thanks! Order {order} is {status} with {carrier}.",
            "I found it: order {order} left our warehouse on {date} and should arrive within "
            "{n} working days.",
            "Your {product} is {status}. You'll get an SMS from {carrier} on the day.",
        ),
        agent=(
            "I've checked order {order}: {carrier} has it and it's {status}.",
            "I called {carrier} and they'll redeliver on {day}.",
            "I've opened a claim with {carrier} for order {order}.",
        ),
    ),
    "returns": Topic(
        label="Returns & refunds",
        problem=(
            "I want to return the {product} I bought", "how do I return order {order}",
            "the {product} arrived damaged", "I got the wrong size, can I exchange it",
            "when will I get my refund for {order}", "the {product} is not what I expected",
        ),
        ask=(
            "I'm sorry to hear that. Could you send us a photo of the item?",
            "Of course. Which item would you like to return and why?",
        ),
        answer=(
            "the {product}, it's too small", "{product} from order {order}, it's broken",
            "it's the {product}, the zip doesn't work", "the colour is different from the photo",
        ),
        resolve=(
            "You can return it for free within 30 days. I've sent a return label to your email.",
            "Thanks! Your refund of {amount} will be on your card in 5-7 working days.",
            "I've registered the return for order {order}. Drop it at any {carrier} point.",
        ),
        agent=(
            "I've approved the refund of {amount} for order {order}.",
            "I'm sending you a replacement {product} today, no need to return the old one.",
            "The return label for {order} is in your inbox now.",
        ),
        photo=True,
    ),
    "payment": Topic(
        label="Payment issue",
        problem=(
            "I was charged twice for order {order}", "my payment was declined",
            "I paid {amount} but the order says pending", "can I pay with PayPal",
            "why was I charged {amount}", "I need an invoice for order {order}",
        ),
        ask=(
            "I can help with that. What's the order number and the amount charged?",
            "Which order is the payment for?",
        ),
        answer=(
            "{order}, {amount}", "it was {amount} on {day}", "order {order}",
            "{amount} twice on the same day",
        ),
        resolve=(
            "The second charge of {amount} is a pre-authorisation and will disappear in 3 days.",
            "I've emailed the invoice for {order} to you.",
            "Your payment for {order} went through; it just took a while to update.",
        ),
        agent=(
            "I see the double charge. I've refunded {amount}; it'll show in 3-5 days.",
            "The bank declined the payment; could you try another card?",
        ),
    ),
    "product": Topic(
        label="Product question",
        problem=(
            "is the {product} waterproof", "do you have the {product} in size M",
            "when will the {product} be back in stock", "what's the difference between the "
            "two {product} models", "does the {product} come with a warranty",
        ),
        ask=("Sure! Which product are you asking about?", "Happy to help. Which item is it?"),
        answer=("the {product}", "{product}, the black one", "the {product} in the sale"),
        resolve=(
            "The {product} has a 2-year warranty and free returns.",
            "The {product} is back in stock on {date}. Want me to notify you?",
            "Yes, the {product} comes in sizes S to XL.",
        ),
        agent=(
            "I checked with the warehouse: the {product} arrives on {date}.",
            "The {product} is water-resistant, not fully waterproof.",
        ),
    ),
    "booking": Topic(
        label="Book a table",
        problem=(
            "I'd like to book a table for {party} on {day}", "table for {party} tonight at {time}?",
            "do you have space on {day} at {time}", "can I book for a birthday, {party} people",
        ),
        ask=("Lovely! For how many people, and what day and time?", "When would you like to come?"),
        answer=(
            "{party} people, {day} at {time}", "{day} {time}, we're {party}",
            "{party} adults and a baby, {time}", "this {day}, {time} if possible",
        ),
        resolve=(
            "Done! Table for {party} on {day} at {time}. See you then 🍽️",
            "We have a table for {party} at {time} on {day}. I've confirmed it.",
            "{time} is full on {day}, but I booked you at 21:30 instead.",
        ),
        agent=(
            "I've moved a few bookings and got you a table for {party} at {time}.",
            "We can do {time} on the terrace for {party}.",
        ),
    ),
    "change_booking": Topic(
        label="Change my booking",
        problem=(
            "I need to change my booking to {day}", "can we be {party} instead",
            "we'll be 30 minutes late", "move my reservation to {time}",
        ),
        ask=("Sure. What's the name on the booking?", "Which booking would you like to change?"),
        answer=("it's under {cname}", "{cname}, {day} at {time}", "the one for {party} on {day}"),
        resolve=(
            "All set, your booking is now on {day} at {time}.",
            "Changed! Table for {party} at {time}.",
        ),
        agent=("I've updated your booking to {day} at {time}.",),
    ),
    "cancel": Topic(
        label="Cancel a booking",
        problem=("I need to cancel my booking for {day}", "cancel the table for {party} please"),
        ask=("I'm sorry you can't make it. What's the name on the booking?",),
        answer=("{cname}", "it's {cname}, {day}", "under {cname} for {party}"),
        resolve=("Your booking for {day} is cancelled. Hope to see you another time!",),
        agent=("Cancelled. The deposit of {amount} will be refunded.",),
    ),
    "hours": Topic(
        label="Opening hours",
        problem=("are you open on {day}", "what time do you close today", "open on holidays?"),
        ask=("Which day are you planning to visit?",),
        answer=("{day}", "this {day} around {time}", "tomorrow"),
        resolve=(
            "We're open {day} from 12:00 to 23:30, kitchen closes at 22:45.",
            "On {day} we open at 13:00. See you!",
        ),
        agent=("We're open on {day} from 12:00 to 16:00 only.",),
    ),
    "appointment": Topic(
        label="Book an appointment",
        problem=(
            "I need an appointment with {doctor}", "can I see a doctor on {day}",
            "I'd like a check-up next week", "is there anything free at {time}",
        ),
        ask=("Of course. Which day suits you best?", "Sure! Any preferred doctor or time?"),
        answer=("{day} at {time}", "{doctor} if possible, {day}", "any time on {day}"),
        resolve=(
            "You're booked with {doctor} on {day} at {time}. Please arrive 10 minutes early.",
            "The first slot with {doctor} is {day} at {time}. I've reserved it for you.",
        ),
        agent=("I've squeezed you in with {doctor} on {day} at {time}.",),
    ),
    "reschedule": Topic(
        label="Reschedule",
        problem=("I can't make my appointment on {day}", "can I move my appointment to {time}"),
        ask=("No problem. When would you like to come instead?",),
        answer=("{day} at {time}", "next {day}", "anytime after {time}"),
        resolve=("Done, your appointment is now on {day} at {time}.",),
        agent=("I moved your appointment with {doctor} to {day} at {time}.",),
    ),
    "results": Topic(
        label="Test results",
        problem=("are my blood test results ready", "I haven't received my results yet"),
        ask=("For your privacy, could you confirm your date of birth?",),
        answer=("{dob}", "it's {dob}", "born {dob}"),
        resolve=("Your results are ready. You can download them from the patient portal.",),
        agent=("{doctor} has reviewed your results; everything looks normal.",),
    ),
    "password": Topic(
        label="Reset my password",
        problem=("I can't log in", "forgot my password", "the reset link doesn't work"),
        ask=("I can help. What's the email address on your account?",),
        answer=("{email}", "it's {email}", "{email} I think, or maybe my work one"),
        resolve=(
            "I've sent a reset link to your email. It's valid for 1 hour.",
            "Check your inbox (and spam) for a reset link from us.",
        ),
        agent=("I've reset your password manually; check your email.",),
    ),
    "billing": Topic(
        label="Billing question",
        problem=("why did my plan price go up", "I need an invoice", "cancel my subscription"),
        ask=("Sure. Which invoice or charge is it about?",),
        answer=("the one from {date}", "{amount} on {day}", "last month's"),
        resolve=("Invoices are under Settings → Billing. The {date} one is {amount}.",),
        agent=("I've applied a {amount} credit to your account.",),
    ),
    "account": Topic(
        label="Delete my account",
        problem=("please delete my account", "how do I close my account"),
        ask=("Sorry to see you go. Could you confirm your email address?",),
        answer=("{email}", "it's {email}"),
        resolve=("Your account will be deleted within 30 days. We've emailed a confirmation.",),
        agent=("I've started the deletion; you'll get a confirmation email.",),
    ),
}
# fmt: on

HUMAN_LABEL = "Talk to a human"


def luhn_digit(digits: str) -> str:
    """The check digit that makes ``digits`` + it pass the Luhn test."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    digits = "".join(ch for ch in number if ch.isdigit())
    return len(digits) >= 2 and luhn_digit(digits[:-1]) == digits[-1]


def card_number(rng: random.Random) -> str:
    """A Luhn-valid 16-digit Visa/Mastercard-looking number, grouped the way people type it."""
    body = rng.choice(("4", "51", "52", "53", "54", "55")) + "".join(
        rng.choice("0123456789") for _ in range(14)
    )
    body = body[:15]
    number = body + luhn_digit(body)
    style = rng.randrange(3)
    if style == 0:
        return number
    sep = " " if style == 1 else "-"
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


_IBAN_BBAN = {
    "ES": (20, False),
    "DE": (18, False),
    "FR": (23, False),
    "NL": (10, True),
    "GB": (14, True),
}


def iban_check(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(ch, 36)) for ch in rearranged))
    return f"{98 - number % 97:02d}"


def iban_valid(iban: str) -> bool:
    s = iban.replace(" ", "").upper()
    if len(s) < 15 or not s[:2].isalpha():
        return False
    number = int("".join(str(int(ch, 36)) for ch in s[4:] + s[:4]))
    return number % 97 == 1


def iban(rng: random.Random) -> str:
    """An IBAN with a valid mod-97 check, grouped by four or not."""
    country = rng.choice(tuple(_IBAN_BBAN))
    n, bank_letters = _IBAN_BBAN[country]
    bank = (
        "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) if bank_letters else ""
    )
    bban = bank + "".join(rng.choice("0123456789") for _ in range(n))
    value = country + iban_check(country, bban) + bban
    if rng.random() < 0.5:
        return value
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


# (international, local) renderings per country; x = a random digit.
_PHONE_FORMS = (
    ("34", "6xx xxx xxx", "+34 {n}", "{n}"),
    ("44", "7xxx xxxxxx", "+44 {n}", "0{n}"),
    ("1", "415 555 xxxx", "+1 {n}", "({a}) {b}-{c}"),
    ("49", "15x xxxxxxxx", "+49 {n}", "0{n}"),
    ("33", "6 xx xx xx xx", "+33 {n}", "0{n}"),
    ("52", "55 xxxx xxxx", "+52 {n}", "{n}"),
)


@dataclass(frozen=True, slots=True)
class Phone:
    """One made-up mobile number: ``digits`` as WhatsApp sends it (country code, no ``+``)."""

    digits: str
    international: str
    local: str


def phone(rng: random.Random) -> Phone:
    cc, pattern, intl_form, local_form = rng.choice(_PHONE_FORMS)
    k = pattern.count("x")
    digits = iter(f"{rng.randrange(10**k):0{k}d}")
    national = "".join(next(digits) if ch == "x" else ch for ch in pattern)
    plain = national.replace(" ", "")
    intl = intl_form.format(n=national if rng.random() < 0.7 else plain)
    if cc == "1":
        local = local_form.format(a=plain[:3], b=plain[3:6], c=plain[6:])
    else:
        local = local_form.format(n=national)
    return Phone(digits=cc + plain, international=intl, local=local)


def email(rng: random.Random, first: str, last: str) -> str:
    first_ascii = _ascii(first).lower()
    last_ascii = _ascii(last).lower()
    user = rng.choice(
        (
            f"{first_ascii}.{last_ascii}",
            f"{first_ascii}{last_ascii[0]}",
            f"{first_ascii}_{last_ascii}",
        )
    )
    if rng.random() < 0.4:
        user += str(rng.randrange(1, 99))
    return f"{user}@{rng.choice(EMAIL_DOMAINS)}"


_ASCII = str.maketrans("áéíóúüñçÁÉÍÓÚÜÑÇ", "aeiouuncAEIOUUNC")


def _ascii(s: str) -> str:
    return s.translate(_ASCII)


# Sentences that carry personal data into a customer's text; {value} is the data.
# fmt: off
PII_SENTENCES: dict[str, tuple[str, ...]] = {
    "email": (
        "my email is {value}", "You can write to me at {value}", "email: {value}",
        "send it to {value} please", "{value} is my email",
    ),
    "phone": (
        "call me on {value}", "my number is {value}", "you can reach me at {value}",
        "phone {value}", "WhatsApp me at {value} if easier",
    ),
    "card": (
        "I paid with my card {value}", "the card ending... actually the full number is {value}",
        "card number {value}",
    ),
    "iban": ("please refund to {value}", "my IBAN is {value}", "bank account {value}"),
}
# fmt: on
