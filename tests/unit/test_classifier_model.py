"""Unit tests of the lexicon baseline classifier."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classifier import lexicon, model
from classifier.model import MODEL_VERSION, classify, normalise


def public(text: str, channel: str = "x", **kwargs):
    """Classify a public message."""
    return classify(text, channel=channel, visibility="public", **kwargs)


def private(text: str, channel: str = "chat", **kwargs):
    """Classify a private message."""
    return classify(text, channel=channel, visibility="private", **kwargs)


# Support, in both languages and every channel's style.


def test_a_french_delivery_complaint_is_support():
    result = public("Toujours pas reçu ma commande depuis 2 semaines, c'est inadmissible !")
    assert result.category == "support"
    assert result.intent == "delivery"
    assert result.is_complaint
    assert result.language == "fr"
    assert result.sentiment == "negative"


def test_an_english_where_is_my_order_tweet_is_a_delivery_case():
    result = public("@shopco where is my order?? It was due on Monday")
    assert (result.category, result.intent, result.language) == ("support", "delivery", "en")


def test_a_complaint_without_a_question_is_support():
    result = public("Worst customer service ever. Been on hold for 2 hours.")
    assert result.category == "support"
    assert result.is_complaint
    assert result.intent == "complaint"


def test_a_double_charge_in_web_chat_is_billing_and_asks_for_a_private_reply():
    result = private(
        "J'ai été facturé deux fois ce mois-ci, pouvez-vous vérifier ? Mon numéro client est 12345678"
    )
    assert (result.category, result.intent) == ("support", "billing")
    assert result.is_complaint
    assert result.reply_privately


def test_a_damaged_parcel_by_email_is_a_refund_case():
    result = private(
        "Bonjour, mon colis est arrivé abîmé, je veux être remboursée. Commande n°4589123", "email"
    )
    assert (result.category, result.intent, result.language) == ("support", "returns_refund", "fr")
    assert result.reply_privately


def test_an_english_login_problem_in_sms_shorthand_is_an_account_case():
    result = private("pls help cant log in to my acct", "sms")
    assert (result.category, result.intent, result.language) == ("support", "account", "en")


def test_french_sms_abbreviations_are_understood():
    result = private("stp pk ma cmd est tjrs pas livrée", "sms")
    assert (result.category, result.intent, result.language) == ("support", "delivery", "fr")
    assert result.is_complaint
    assert "commande" in normalise("stp pk ma cmd est tjrs pas livrée").split()


def test_a_whatsapp_message_without_accents_or_punctuation_is_understood():
    result = private("bonjour g pas recu mon colis svp", "whatsapp")
    assert (result.category, result.intent, result.language) == ("support", "delivery", "fr")


def test_a_broken_app_in_a_messenger_thread_is_technical():
    result = private("L'appli ne fonctionne plus depuis la mise à jour, ça plante à l'ouverture", "messenger")
    assert (result.category, result.intent) == ("support", "technical")
    assert result.is_complaint


def test_a_plain_how_to_question_is_support_but_not_a_complaint():
    result = private("How do I change the email address on my account?")
    assert (result.category, result.intent) == ("support", "account")
    assert not result.is_complaint
    assert result.priority == "P3"


def test_a_pre_purchase_question_on_facebook_is_a_product_question():
    result = public("Do you sell the blue one in size M? Is it in stock?", "facebook")
    assert (result.category, result.intent) == ("support", "product_question")
    assert not result.is_complaint


def test_an_angry_review_is_a_complaint():
    result = public("Nul. Service client injoignable, colis jamais arrivé, à fuir !", "review")
    assert result.category == "support"
    assert result.is_complaint
    assert result.sentiment == "negative"


# Sarcasm and mixed messages.


def test_great_with_a_third_outage_and_a_clap_is_sarcasm():
    result = public("Great, 3rd time this month my internet is down 👏")
    assert (result.category, result.intent) == ("support", "outage")
    assert result.sentiment == "negative"
    assert result.is_complaint


def test_merci_pour_rien_is_read_as_sarcasm():
    result = public("Merci pour rien @Free, toujours pas de connexion depuis 3 jours")
    assert result.sentiment == "negative"
    assert result.is_complaint
    assert result.category == "support"


def test_bravo_about_a_late_train_is_not_praise():
    result = public("Bravo @SNCF, encore un train en retard de 45 minutes 👏")
    assert result.category == "support"
    assert result.sentiment == "negative"
    assert result.intent != "praise"


def test_praise_with_a_question_is_support():
    result = public("I love your products! Do you ship to Canada?", "instagram")
    assert (result.category, result.intent) == ("support", "product_question")
    assert result.sentiment == "positive"
    assert not result.is_complaint


def test_french_praise_with_an_availability_question_is_support():
    result = public("Trop beau 😍 c'est dispo en 38 ?", "instagram")
    assert (result.category, result.intent, result.language) == ("support", "product_question", "fr")


def test_a_negated_compliment_is_negative():
    result = public("The new update is not good at all, the app is so slow now")
    assert result.sentiment == "negative"
    assert result.category == "support"


def test_praise_about_a_solved_problem_stays_marketing():
    result = public("Thanks for sorting out my broken screen so fast, it works now!")
    assert (result.category, result.intent) == ("marketing", "praise")


def test_a_one_star_review_is_a_complaint_and_a_four_star_review_with_a_nitpick_is_praise():
    one_star = public("★☆☆☆☆ Colis arrivé écrasé, produit cassé, service client injoignable", "review")
    four_stars = public(
        "4 étoiles - Très bon accueil, pain excellent. Seul bémol : l'attente le samedi.", "review"
    )
    assert one_star.is_complaint
    assert (four_stars.category, four_stars.intent) == ("marketing", "praise")


def test_a_crying_emoji_alone_does_not_open_a_case():
    result = public("the dog in the 3rd pic 😭😭", "instagram")
    assert result.category == "marketing"
    assert not result.is_complaint


# Marketing.


def test_plain_praise_is_marketing():
    result = public("Merci pour la livraison rapide, top !", "review")
    assert (result.category, result.intent, result.sentiment) == ("marketing", "praise", "positive")


def test_praise_sent_to_a_support_handle_is_still_praise():
    result = public("Thanks @AmazonHelp, your customer service just came in clutch!")
    assert (result.category, result.intent) == ("marketing", "praise")


def test_a_contest_reply_mentioning_a_product_is_marketing():
    result = public("Je participe ! J'adore votre nouveau rouge à lèvres 😍 #concours @marie", "instagram")
    assert (result.category, result.intent) == ("marketing", "campaign")
    assert result.priority == "P4"


def test_an_english_giveaway_entry_is_a_campaign_reply():
    result = public("Would love to win the new headphones! Tagging @sam 🤞 #giveaway", "facebook")
    assert (result.category, result.intent, result.language) == ("marketing", "campaign", "en")


def test_a_press_request_is_partnership_press_even_when_it_mentions_delays():
    result = private(
        "Hi, I'm a journalist at The Guardian writing a piece on delivery delays. "
        "Could your press office comment by Friday?",
        "email",
    )
    assert (result.category, result.intent) == ("marketing", "partnership_press")


def test_an_influencer_collab_offer_is_marketing_and_moves_to_private():
    result = public(
        "Hey! Lifestyle influencer here (50k followers), would love to collab 💕 DM me", "instagram"
    )
    assert (result.category, result.intent) == ("marketing", "partnership_press")
    assert result.reply_privately


def test_a_french_partnership_request_is_marketing():
    result = private(
        "Bonjour, je suis créatrice de contenu beauté et je vous propose un partenariat", "email"
    )
    assert (result.category, result.intent, result.language) == ("marketing", "partnership_press", "fr")


def test_a_spam_link_is_spam():
    result = public("Earn $500/day from home!! Click here http://bit.ly/xyz", "facebook")
    assert (result.category, result.intent) == ("marketing", "spam")


def test_spam_that_opens_with_praise_is_still_spam():
    result = public("Great product!!! Visit cheap-meds.example.com for best deals on everything!!!", "review")
    assert (result.category, result.intent) == ("marketing", "spam")


def test_a_marketing_message_is_p4_whatever_the_reach():
    result = public("Je participe au concours ! 🎁", "instagram", followers=2_000_000)
    assert result.priority == "P4"
    assert not result.is_complaint


# Little or no evidence.


def test_a_lone_thumbs_up_gets_low_confidence():
    result = private("👍", "messenger")
    assert result.category == "marketing"
    assert result.confidence < 0.65


def test_an_empty_message_is_chatter_with_at_most_even_confidence():
    result = private("   ", "sms")
    assert (result.category, result.intent) == ("marketing", "chatter")
    assert result.confidence <= 0.5
    assert result.explanation == []


def test_a_message_in_another_language_is_other_and_unsure():
    result = private("Hola, necesito ayuda con mi pedido")
    assert result.language == "other"
    assert result.confidence <= 0.5


# Messages in languages the classifier does not decide in, and English or French ones that carry a word
# of those languages (a place, a name, a greeting): shared by the learned model's test.
OTHER_LANGUAGE_MESSAGES = [
    "Hola, mi pedido no ha llegado todavía y nadie me responde. ¿Qué pasa con el envío?",
    "Hallo, meine Bestellung ist immer noch nicht angekommen. Können Sie mir helfen?",
    "Ciao, il mio ordine non è ancora arrivato, potete aiutarmi?",
    "Olá, a minha encomenda ainda não chegou e ninguém me responde",
    "Mijn bestelling is nog steeds niet aangekomen, kunnen jullie helpen?",
    "Nombre de fichero demasiado largo, la aplicación no responde",
]
MIXED_MESSAGES = [
    ("en", "My flight from Los Angeles to El Paso was cancelled and nobody tells us why"),
    ("en", "Gracias for the quick reply, you guys rock"),
    ("en", "Die Hard is on tonight, thanks for the free movie channel"),
    ("fr", "que se passe-t-il avec la box ce soir ?"),
    ("fr", "de la merde ce service"),
    ("fr", "Ciao la fibre, bonjour la 4G : toujours pas de connexion depuis hier"),
]


@pytest.mark.parametrize("text", OTHER_LANGUAGE_MESSAGES)
def test_a_message_in_spanish_german_italian_portuguese_or_dutch_is_other_and_unsure(text: str):
    result = public(text)
    assert result.language == "other"
    # Its category is a guess from English and French words: unsure, so the router sends it to review.
    assert result.confidence <= model.OTHER_LANGUAGE_CONFIDENCE
    # A hint in English or French does not outweigh a clear other language.
    assert public(text, language_hint="fr").language == "other"


def test_a_message_too_short_to_tell_its_language_keeps_its_confidence():
    # "other" for want of words is not another language: a clear praise stays sure of itself.
    result = public("Merci 😍😍😍 au top")
    assert result.language == "fr"
    bare = public("😍😍😍🔥🔥")
    assert bare.language == "other"
    assert bare.confidence > model.OTHER_LANGUAGE_CONFIDENCE


@pytest.mark.parametrize(("language", "text"), MIXED_MESSAGES)
def test_a_word_of_another_language_leaves_an_english_or_french_message_as_it_is(language: str, text: str):
    assert public(text).language == language


def test_a_word_shared_with_french_counts_for_both_and_tips_nothing():
    # "de", "la", "que" are Spanish as much as French: alone they do not make a message Spanish.
    assert public("de la que").language == "fr"
    assert model.decide_language(0, 3, 3, None) == "fr"
    assert model.decide_language(0, 3, 4, None) == "other"
    # One word of another language is not enough ("el", "sie" can be names).
    assert model.decide_language(0, 0, 1, "fr") == "fr"
    assert model.decide_language(1, 0, 1, None) == "en"


def test_the_language_hint_settles_an_ambiguous_text():
    assert private("ok 👍", language_hint="fr-FR").language == "fr"
    assert private("ok 👍", language_hint="en").language == "en"
    assert private("Mon colis n'est pas arrivé", language_hint="en").language == "fr"


@pytest.mark.parametrize("hint", ["und", "zxx", "mul", "qme", "qht", "qam", "UND", "", " ", "?"])
def test_a_tag_that_names_no_language_is_no_hint(hint: str):
    # X tags a tweet of media, hashtags or mentions only "qme", "qht", "qam" (ISO 639's local-use range),
    # one it cannot place "und": none of them says "another language".
    assert model.hinted_language(hint) is None
    # One French word: a close call the hint would settle, had it named a language.
    assert private("@Brand top", language_hint=hint).language == "fr"
    assert private("@Brand the", language_hint=hint).language == "en"
    # A real tag for another language still settles the same close call.
    assert private("@Brand top", language_hint="es").language == "other"


@pytest.mark.parametrize(
    ("hint", "language"),
    [
        ("fr-FR", "fr"),
        ("fr_CA", "fr"),
        ("fra", "fr"),
        ("fre", "fr"),
        ("en-GB", "en"),
        ("eng", "en"),
        ("frr", "other"),
        ("es", "other"),
        ("pt-BR", "other"),
        ("qu", "other"),
        ("qwz", "other"),
    ],
)
def test_a_language_tag_is_read_by_its_primary_subtag(hint: str, language: str):
    assert model.hinted_language(hint) == language


def test_confidence_grows_with_evidence():
    weak = public("colis")
    strong = public("Toujours pas reçu mon colis, numéro de suivi invalide, c'est inadmissible")
    assert 0.5 < weak.confidence < strong.confidence


# Priority and private replies.


def test_an_outage_is_p1():
    assert public("Le réseau est en panne à Lyon ?").priority == "P1"


def test_an_urgent_public_complaint_is_p1():
    result = public("URGENT: your app keeps crashing and I can't pay my rent")
    assert result.is_complaint
    assert result.priority == "P1"


def test_author_reach_raises_a_public_complaint_to_p1():
    text = "My order arrived damaged and the replacement is late"
    assert public(text, followers=50_000).priority == "P1"
    assert public(text, followers=120).priority == "P2"
    assert private(text, followers=50_000).priority == "P2"


def test_an_urgent_request_without_complaint_is_p2():
    result = private("Can you change the delivery address asap please?", "email")
    assert not result.is_complaint
    assert result.priority == "P2"


@pytest.mark.parametrize(
    "text",
    [
        "You can reach me at jane.doe@example.com",
        "Rappelez-moi au 06 12 34 56 78",
        "Call me on +44 20 7946 0958",
        "My card 4970 1234 5678 9012 was charged",
        "Order 88812345 never came",
        "Can you DM me?",
        "Je vous envoie les détails en privé",
        "Quel est mon numéro client ?",
    ],
    ids=[
        "email",
        "french-phone",
        "international-phone",
        "card",
        "order-number",
        "dm",
        "en-prive",
        "numero-client",
    ],
)
def test_personal_data_or_a_request_to_go_private_asks_for_a_private_reply(text):
    assert public(text).reply_privately


def test_a_message_without_personal_data_can_be_answered_publicly():
    assert not public("My parcel is 3 days late, any update?").reply_privately


# Properties.

SAMPLES = [
    "Toujours pas reçu ma commande depuis 2 semaines, c'est inadmissible !",
    "Great, 3rd time this month my internet is down 👏",
    "I love your products! Do you ship to Canada?",
    "Je participe ! J'adore votre nouveau rouge à lèvres 😍 #concours",
    "Earn $500/day from home!! Click here http://bit.ly/xyz",
    "pls help cant log in to my acct",
    "stp pk ma cmd est tjrs pas livrée",
    "👍",
    "",
    "?!?!",
    "@brand @other #tag",
    "sooooo baaaad 😡😡😡",
    "ÇA NE MARCHE PLUS !!! REMBOURSEZ-MOI",
    "مرحبا، أين طلبي؟",
    "zero\u200bwidth\u200bspaces and\ttabs\nnewlines",
    "word " * 2000,
]


@pytest.mark.parametrize("text", SAMPLES)
def test_confidence_and_sentiment_stay_in_range(text):
    result = public(text)
    assert 0.0 <= result.confidence <= 1.0
    assert -1.0 <= result.sentiment_score <= 1.0
    assert result.model_version == MODEL_VERSION


@pytest.mark.parametrize("text", SAMPLES)
def test_the_same_input_gives_the_same_output(text):
    assert public(text, followers=5) == public(text, followers=5)


@pytest.mark.parametrize("text", SAMPLES)
def test_explanation_terms_occur_in_the_normalised_text(text):
    result = public(text)
    assert len(result.explanation) <= 5
    padded = f" {normalise(text)} "
    for term in result.explanation:
        assert f" {term} " in padded


@pytest.mark.parametrize("text", SAMPLES)
def test_the_labels_agree_with_each_other(text):
    result = public(text)
    if result.category == "marketing":
        assert result.priority == "P4"
        assert not result.is_complaint
        assert result.intent in ("praise", "campaign", "partnership_press", "chatter", "spam")
    else:
        assert result.priority != "P4"


def test_every_lexicon_term_is_written_in_normalised_form():
    tables = [value for value in vars(lexicon).values() if isinstance(value, dict) and "en" in value]
    assert len(tables) > 10
    for table in tables:
        for terms in table.values():
            if not isinstance(terms, dict):
                continue
            for term in terms:
                stem = term.rstrip("*")
                expected = f"{stem} {stem[1:]}" if stem.startswith("#") else stem
                assert normalise(stem) == expected, term


def _normalise_unguarded(text: str) -> str:
    """`normalise` with every substitution applied whatever the text holds, and the whole text unaccented
    at once: the reference for its guards and its per-character table."""
    text = model._URL.sub(" url ", text)
    text = model._EMAIL.sub(" emailaddr ", text)
    text = model._DOMAIN.sub(" url ", text)
    text = model._RATING.sub(lambda m: f" stars_{m.group(1) or m.group(2)} ", text)
    text = model._STAR_RUN.sub(model._star_rating, text)
    text = model._CARD.sub(" cardnumber ", text)
    text = model._PHONE.sub(" phonenumber ", text)
    text = model._LONG_NUMBER.sub(" longnumber ", text)
    text = model._EMOJI.sub(lambda m: f" {model.lx.EMOJI[m.group()]} ", text)
    text = model._NUMERO.sub(" numero ", text)
    decomposed = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in decomposed if not unicodedata.combining(c))
    text = text.replace("œ", "oe").replace("æ", "ae").replace("ß", "ss")
    text = model._APOSTROPHE.sub(" ", text)
    text = model._REPEATED.sub(r"\1\1", text)
    return " ".join(t for raw in model._TOKEN.findall(text) for t in model._tokens(raw))


PIECES = st.sampled_from(
    [
        "http://a.co/x",
        "WWW.shop.fr",
        "a@b.com",
        "4/5",
        "3 étoiles",
        "★★☆",
        "⭐⭐⭐",
        "06 12 34 56 78",
        "4970 1234 5678 9012",
        "n° 123456789",
        ":)",
        "<3",
        "😡",
        "l'appli",
        "Star",
        "trooop",
        " ",
        "reçu",
    ]
)


@given(st.lists(st.one_of(PIECES, st.text(max_size=12)), max_size=8).map("".join))
def test_normalising_skips_a_pattern_only_when_it_could_not_match(text):
    assert normalise(text) == _normalise_unguarded(text)
