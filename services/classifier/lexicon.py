"""Term tables of the lexicon baseline: data only, read by `classifier.model`.

Every term is written in normalised form: lowercase, no accents, apostrophes as spaces
("doesn t work", "j en ai marre"). A trailing `*` matches any ending ("rembours*" matches
"remboursement", "rembourser"). Weights: about 1 is a hint, 2 a clear cue, 3 decisive.
Tables are keyed by language ("en", "fr", or "any" for emoji and symbols).
"""

from __future__ import annotations

# The tables are packed several terms a line so they read as vocabularies, not as 1,500 lines.
# fmt: off

Terms = dict[str, dict[str, float]]

# Support intents: what the customer needs help with.
OUTAGE: Terms = {
    "en": {
        "outage*": 3, "is down": 3, "are down": 3, "it s down": 3, "down again": 3, "servers down": 3,
        "service down": 3, "site down": 3, "website down": 3, "app down": 3, "down for everyone": 3,
        "no service": 3, "no signal": 2.5, "no internet": 3, "no network": 3, "no connection": 2,
        "no wifi": 2.5, "no power": 3, "power cut": 3, "blackout": 2.5, "network": 1, "connectivity": 1.5,
    },
    "fr": {
        "panne*": 3, "coupure*": 3, "hors service": 3, "plus de reseau": 3, "pas de reseau": 3,
        "aucun reseau": 3, "plus d internet": 3, "pas d internet": 3, "plus de connexion": 3,
        "pas de connexion": 2.5, "plus de tv": 2.5, "plus de tele": 2.5, "plus de courant": 3,
        "plus de wifi": 2.5, "service indisponible": 3, "indisponible": 1.5, "incident": 2,
        "dysfonctionnement*": 2, "plus rien ne marche": 3, "reseau": 1.5, "fibre": 1,
    },
    "any": {"4g": 1, "5g": 1},
}

DELIVERY: Terms = {
    "en": {
        "where is my order": 3, "where s my order": 3, "where is my package": 3, "where s my package": 3,
        "where is my parcel": 3, "where is my": 2, "where s my": 2, "my order": 1.5, "order": 1,
        "package": 1.5, "parcel": 1.5, "delivery": 2, "deliver*": 1.5, "shipping": 1.5, "shipment": 1.5,
        "shipped": 1.5, "tracking": 2, "courier": 1.5, "driver": 1, "out for delivery": 2,
        "not arrived": 2.5, "hasn t arrived": 2.5, "never arrived": 3, "never received": 3,
        "not received": 2.5, "haven t received": 2.5, "didn t receive": 2.5, "still haven t received": 3,
        "still not received": 3, "missing package": 3, "lost package": 3, "late": 1, "delayed": 1.5,
        "delay*": 1.5, "baggage": 2, "luggage": 2, "lost bag*": 2.5, "flight": 0.5, "ups": 1, "fedex": 1,
        "usps": 1, "dhl": 1, "royal mail": 1,
    },
    "fr": {
        "colis": 2, "livraison*": 2, "livreur*": 2, "livrer": 1.5, "livre": 1, "livree": 1.5,
        "commande*": 1, "ma commande": 1.5, "toujours pas recu*": 3, "pas recu*": 2.5, "jamais recu*": 3,
        "rien recu": 2.5, "toujours rien": 2, "pas arrive*": 2.5, "jamais arrive*": 3,
        "ou est ma commande": 3, "ou en est ma commande": 3, "ou est mon colis": 3, "suivi": 1.5,
        "numero de suivi": 2.5, "en retard": 1.5, "retard*": 1.5, "transporteur": 2, "la poste": 1.5,
        "colissimo": 2, "chronopost": 2, "mondial relay": 2, "point relais": 2, "expedi*": 1.5,
        "colis perdu": 3, "bagage*": 2, "valise": 1.5, "vol annule": 2,
    },
}

BILLING: Terms = {
    "en": {
        "bill": 1.5, "billing": 2, "billed": 2, "charged": 2, "charge": 1.5, "charged twice": 3,
        "double charged": 3, "overcharged": 3, "invoice*": 2, "checkout": 1, "payment*": 1.5, "paid": 1,
        "subscription": 1.5, "renewal": 1.5, "auto renew*": 2, "price increase": 2, "fee": 1.5, "fees": 1.5,
        "credit card": 1.5, "card declined": 2.5, "declined": 1.5, "transaction*": 1.5, "receipt": 1.5,
        "direct debit": 2, "unauthorized": 2, "unauthorised": 2, "money": 1,
    },
    "fr": {
        "factur*": 2, "facture deux fois": 3, "preleve*": 2, "prelevement*": 2, "double prelevement": 3,
        "debite*": 2, "paiement*": 1.5, "payer": 1, "paye": 1, "abonnement": 1.5, "resili*": 2, "tarif*": 1,
        "hausse": 1.5, "augmentation": 1.5, "frais": 1.5, "carte bancaire": 1.5, "cb": 1, "echeance*": 1.5,
        "forfait": 1.5, "trop percu": 2.5, "montant": 1.5, "sans mon accord": 2,
    },
}

ACCOUNT: Terms = {
    "en": {
        "account": 1.5, "my account": 2, "log in": 2, "login": 2, "logged out": 2, "sign in": 2,
        "password": 2.5, "reset password": 3, "locked out": 3, "hacked": 3, "username": 2,
        "verification code": 2.5, "2fa": 2, "two factor": 2, "delete my account": 3, "close my account": 3,
        "suspended": 2.5, "banned": 2, "can t log in": 3, "can t sign in": 3, "can t access": 2,
    },
    "fr": {
        "compte": 1.5, "mon compte": 2, "mot de passe": 2.5, "identifiant*": 2, "me connecter": 2,
        "compte bloque": 3, "pirate": 2.5, "code de verification": 2.5, "supprimer mon compte": 3,
        "espace client": 2.5, "numero client": 2, "suspendu": 2,
    },
}

TECHNICAL: Terms = {
    "en": {
        "doesn t work": 2.5, "not working": 2.5, "isn t working": 2.5, "stopped working": 3,
        "won t work": 2.5, "won t turn on": 3, "won t load": 2.5, "not loading": 2.5, "crash*": 2.5,
        "buggy": 2, "glitch*": 2, "error": 2, "error message": 2.5, "freez*": 2, "frozen": 2,
        "black screen": 2.5, "update": 1.5, "app": 1, "battery": 1.5, "screen": 1, "bluetooth": 1.5,
        "reboot": 1.5, "restart": 1, "broken": 1.5, "slow": 1.5, "lag*": 1.5, "issue*": 1.5,
        "problem*": 1.5, "fix": 1.5, "not syncing": 2, "connection": 1.5, "settings": 1, "device": 1,
    },
    "fr": {
        "ne fonctionne plus": 3, "ne fonctionne pas": 3, "fonctionne pas": 2.5, "fonctionne plus": 2.5,
        "marche pas": 2.5, "marche plus": 2.5, "ne s allume plus": 3, "s allume pas": 2.5, "beug*": 2,
        "plante": 2, "erreur": 2, "message d erreur": 2.5, "mise a jour": 1.5, "maj": 1.5, "appli*": 1,
        "ecran": 1, "batterie": 1.5, "debit": 1.5, "connexion": 1, "lent*": 1, "probleme*": 1.5,
        "souci*": 1.5, "bloque*": 1, "redemarr*": 1.5, "reinitialis*": 1.5, "impossible de": 2,
        "n arrive pas": 2, "arrive pas a": 2,
    },
    "any": {"bug*": 2, "wifi": 1.5},
}

RETURNS_REFUND: Terms = {
    "en": {
        "refund*": 3, "return*": 1.5, "return label": 2.5, "exchange": 1.5, "money back": 3,
        "send it back": 2.5, "replacement": 2, "damaged": 2, "arrived broken": 3, "wrong item": 3,
        "wrong size": 2, "defective": 2, "faulty": 2, "warranty": 2, "chargeback": 2.5,
    },
    "fr": {
        "rembours*": 3, "retour": 1.5, "retourner": 2, "renvoyer": 1.5, "echange*": 1.5,
        "etiquette de retour": 3, "bon de retour": 3, "remplacement": 2, "abime*": 2.5, "casse*": 2,
        "defectueu*": 2.5, "mauvais article": 3, "mauvaise taille": 2, "garantie": 2,
    },
}

PRODUCT_QUESTION: Terms = {
    "en": {
        "do you sell": 3, "do you have": 2, "in stock": 2.5, "out of stock": 2, "back in stock": 2.5,
        "available": 1.5, "availability": 2, "how much": 2, "price": 1.5, "pricing": 1.5, "cost": 1,
        "what size": 2, "which size": 2, "sizes": 1.5, "does it": 1.5, "does this": 1.5, "when will": 1.5,
        "release date": 2, "do you ship": 3, "do you deliver": 3, "ship to": 2, "opening hours": 2,
        "where can i buy": 3, "where to buy": 3, "can i buy": 2.5, "want to buy": 2, "looking for": 1.5,
        "difference between": 2, "what do you recommend": 2, "which one": 1.5, "before i order": 2.5,
        "before buying": 2.5, "before i buy": 2.5, "quick question": 1,
    },
    "fr": {
        "vous vendez": 3, "avez vous": 2, "en stock": 2.5, "rupture de stock": 2.5, "disponible": 1.5,
        "disponibilite": 2, "combien": 1.5, "prix": 1.5, "quelle taille": 2, "est ce que": 1,
        "quand sortira": 2, "livrez vous": 3, "vous livrez": 2.5, "magasin": 1.5, "horaires": 2,
        "ou acheter": 3, "ou trouver": 2.5, "acheter": 1.5, "je cherche": 1.5, "devis": 2,
        "un conseil": 1.5, "vos conseils": 1.5, "difference entre": 2, "la taille": 1.5, "j hesite": 1.5,
        "hesite entre": 2, "avant d acheter": 2.5, "avant de commander": 2.5,
    },
    "any": {"compatible": 2},
}

# Explicit complaint words: a stated breach of expectations, counted as negative sentiment too.
COMPLAINT: Terms = {
    "en": {
        "complaint": 3, "complain*": 2.5, "unacceptable": 3, "disgrace*": 3, "disgusting": 3, "terrible": 2,
        "horrible": 2, "awful": 2, "worst": 2.5, "ridiculous": 2.5, "pathetic": 3, "useless": 2.5,
        "shocking": 2, "a joke": 2, "fed up": 3, "sick of": 2.5, "tired of": 2, "never again": 3,
        "rip off": 3, "ripoff": 3, "poor service": 3, "bad service": 3, "no response": 2, "no reply": 2,
        "still waiting": 2.5, "been waiting": 2, "on hold": 2, "nobody": 1.5, "no one": 1.5, "ignored": 2,
        "ignoring": 2, "disappoint*": 2.5, "let down": 2, "frustrat*": 2.5, "annoy*": 2, "furious": 3,
        "rude": 2.5, "misleading": 2.5, "what the hell": 2, "wtf": 2, "again": 0.5, "every time": 1.5,
        "still": 0.5, "why": 0.5, "infuriat*": 3, "livid": 3, "outraged": 3, "appall*": 3, "shambles": 3,
        "nightmare": 2.5, "hopeless": 2.5, "incompetent": 3, "clueless": 2.5, "sort it out": 2,
        "sort this out": 2, "you should": 1, "should have": 1, "not acceptable": 3, "not good enough": 3,
        "3rd time": 2, "third time": 2, "4th time": 2, "yet again": 2, "no info*": 2, "no update*": 2,
        "supposed to": 1.5,
    },
    "fr": {
        "reclamation": 3, "plainte": 3, "inadmissible": 3, "inacceptable": 3, "honteux": 3, "honte": 2.5,
        "scandale*": 3, "lamentable": 3, "nul": 2, "nuls": 2, "nulle": 2, "pitoyable": 3, "inutile": 2,
        "deplorable": 3, "catastroph*": 2.5, "n importe quoi": 2.5, "marre": 3, "ras le bol": 3,
        "arnaque*": 3, "escroc*": 3, "voleur*": 3, "decu*": 2.5, "decevant*": 2.5, "deception": 2.5,
        "pire": 2.5, "mediocre": 2.5, "aucune reponse": 2.5, "pas de reponse": 2.5, "sans reponse": 2.5,
        "toujours en attente": 2.5, "j attends": 2, "attente": 1.5, "personne ne repond": 3,
        "injoignable": 3, "plus jamais": 3, "fuyez": 3, "a fuir": 3, "foutage de gueule": 3,
        "vous moquez": 2.5, "abus*": 2.5, "menti": 2, "ca suffit": 2.5, "galere*": 2, "enerve*": 2.5,
        "furieu*": 3, "insupportable": 3, "toujours pas": 2, "encore": 0.5, "pourquoi": 0.5,
        "pas normal": 2.5, "pas acceptable": 3, "debile": 2, "incompetent*": 3, "cauchemar": 2.5,
        "j hallucine": 2.5, "hallucinant": 2.5, "ridicule": 2.5, "inexcusable": 3, "3eme fois": 2,
        "3e fois": 2, "troisieme fois": 2, "enieme fois": 2.5, "aucune info*": 2, "aucune nouvelle*": 2,
        "cense": 1.5, "desagreable": 2.5, "impoli*": 2.5, "je tiens a signaler": 2,
    },
}

# A request for help: makes a message support even without a topic, and outweighs praise.
REQUEST: Terms = {
    "en": {
        "help": 1.5, "help me": 2, "can you": 1.5, "could you": 1.5, "can someone": 1.5, "please": 0.5,
        "how do i": 2, "how can i": 2, "how to": 1, "i need": 1, "need help": 2, "assist*": 1.5,
        "support": 0.5, "customer service": 0.5, "contact": 1, "call me": 1.5, "get back to me": 2,
        "any update": 2, "what happened": 1.5, "what s going on": 1.5, "cancel": 1.5, "i would like to": 1,
        "is there a way": 2, "is there any way": 2, "please add": 1.5, "please make": 1, "option to": 1,
        "feature": 1, "you need to": 1.5, "fix this": 1.5, "fix it": 1.5,
    },
    "fr": {
        "aide": 0.5, "de l aide": 1.5, "aidez moi": 2, "besoin d aide": 2, "pouvez vous": 1.5,
        "pourriez vous": 1.5, "comment faire": 2, "comment": 1, "je voudrais": 1, "j aimerais": 1,
        "je souhaite": 1, "s il vous plait": 0.5, "s il te plait": 0.5, "merci de": 1, "me recontacter": 2,
        "rappeler": 1.5, "contacter": 1, "joindre": 1.5, "service client": 0.5, "sav": 1,
        "des nouvelles": 1.5, "une reponse": 1.5, "annuler": 1.5, "modifier": 1, "est il possible": 1.5,
        "serait il possible": 1.5, "y a t il": 1,
    },
    "any": {"?": 0.5},
}

# Marketing intents.
CAMPAIGN: Terms = {
    "en": {
        "giveaway": 3, "#giveaway*": 3, "contest": 3, "#contest*": 3, "competition": 2.5, "sweepstake*": 3,
        "enter me": 2.5, "the draw": 2, "refer a friend": 2.5, "referral": 1.5, "raffle": 3, "prize": 2.5,
        "win": 2, "#win": 2.5, "winner*": 2, "love to win": 3, "want to win": 3, "pick me": 3,
        "choose me": 2.5, "count me in": 2.5, "fingers crossed": 2, "tag a friend": 3, "tagged": 1.5,
        "tagging": 2, "entered": 1, "entry": 1, "followed and": 2, "retweeted": 2, "rt": 1.5,
        "participat*": 2.5, "good luck": 1.5, "lucky": 1.5, "promo code": 1.5, "discount code": 1.5,
        "campaign": 2, "new collection": 1.5, "limited edition": 1.5, "black friday": 1.5,
    },
    "fr": {
        "concours": 3, "#concours*": 3, "jeu concours": 3, "#jeuconcours*": 3, "tirage au sort": 3,
        "je joue": 2, "parrainage": 2.5, "tirage": 2, "gagner": 2, "gagnant*": 2.5, "des lots": 1.5,
        "un lot": 1.5, "je participe": 3, "participe*": 2, "tente ma chance": 3, "je tente": 2.5,
        "croise les doigts": 2, "doigts croises": 2, "j identifie": 2.5, "identifie": 1.5, "partage": 1,
        "bonne chance": 1.5, "code promo": 1.5, "soldes": 1.5, "nouvelle collection": 1.5,
        "edition limitee": 1.5, "calendrier de l avent": 2,
    },
    "any": {"tag": 1.5, "emoji_fingerscrossed": 1.5, "emoji_gift": 1.5, "emoji_trophy": 1.5},
}

PARTNERSHIP_PRESS: Terms = {
    "en": {
        "partnership": 3, "partner with": 3, "influencer*": 3, "ambassador": 2.5, "brand ambassador": 3,
        "media kit": 3, "press": 1.5, "press release": 3, "press office": 3, "journalist": 3,
        "reporter": 2.5, "writing a piece": 3, "writing an article": 3, "for a story": 2.5, "pr team": 3,
        "pr department": 3, "media inquiry": 3, "business inquiry": 3, "business enquiry": 3,
        "work with you": 2.5, "work together": 2.5, "content creator": 3, "ugc": 2.5, "blogger": 2.5,
        "youtuber": 2.5, "my audience": 2.5, "my followers": 2, "promote your brand": 2.5, "pr package": 3,
        "newsletter": 2, "i write for": 2.5, "blog": 2, "radio": 1.5, "producer": 1.5, "affiliate": 2.5,
        "agency": 1.5,
    },
    "fr": {
        "partenariat": 3, "partenaire": 2, "influenceu*": 3, "ambassadeur": 3, "ambassadrice": 3,
        "journaliste": 3, "presse": 2, "relations presse": 3, "communique de presse": 3, "reportage": 3,
        "redaction": 2, "magazine": 2, "emission": 1.5, "travailler avec vous": 2.5,
        "travailler ensemble": 2.5, "createur de contenu": 3, "creatrice de contenu": 3, "blogueu*": 2.5,
        "youtubeu*": 2.5, "ma communaute": 2.5, "mes abonnes": 2, "proposition commerciale": 2.5,
        "kit media": 3,
    },
    "any": {
        "collab*": 3, "sponsor*": 2.5, "article": 1.5, "interview*": 2, "podcast": 2, "media*": 1.5,
    },
}

SPAM: Terms = {
    "en": {
        "click here": 3, "click the link": 3, "check my profile": 3, "check out my": 2, "follow me": 2.5,
        "follow back": 2.5, "followback": 2.5, "free followers": 3, "buy followers": 3, "nft": 2,
        "forex": 3, "invest*": 1.5, "earn": 1.5, "make money": 3, "from home": 1.5, "passive income": 3,
        "dm me for": 3, "onlyfans": 3, "viagra": 3, "loan": 1.5, "telegram": 1.5, "cashapp": 2,
        "cheap": 1.5, "subscribe to my": 3, "hot singles": 3, "you have been selected": 3, "claim your": 3,
        "act now": 2.5, "claim now": 3, "you ve won": 3, "you have won": 3, "gift card": 1,
        "best deals": 2.5, "link in bio": 2.5, "promote your page": 3, "gain followers": 3,
        "get followers": 3, "more followers": 2.5, "followers in": 2, "dear website owner": 3,
        "website owner": 2.5, "seo": 2, "ranking": 1.5, "grow your business": 3, "boost your sales": 3,
        "leads": 1.5,
    },
    "fr": {
        "cliquez ici": 3, "clique ici": 3, "cliquez sur le lien": 3, "lien en bio": 2.5, "abonnez vous": 2,
        "suivez moi": 2.5, "gagnez de l argent": 3, "argent facile": 3, "revenu passif": 3, "investi*": 1.5,
        "trading": 2, "rencontres": 2, "celibataires": 2.5, "paris sportifs": 3, "credit rapide": 3,
        "abonnez vous a ma chaine": 3, "vous avez gagne": 2.5, "offre exclusive": 2, "developpez votre": 2,
        "prospect*": 2, "b2b": 1.5, "augmentez vos ventes": 3, "referencement": 2,
    },
    # A bare link is weak: customers link screenshots too.
    "any": {"url": 0.3, "crypto*": 2.5, "bitcoin": 2.5, "casino": 2},
}

CHATTER: Terms = {
    "en": {
        "lol": 1.5, "lmao": 1.5, "haha*": 1.5, "omg": 1, "who else": 1.5, "good morning": 1,
        "happy friday": 1.5, "#tbt": 1, "vibes": 1, "mood": 1, "hello": 0.3, "hi": 0.3, "hey": 0.3,
    },
    "fr": {
        "mdr": 1.5, "ptdr": 1.5, "xd": 1, "bonjour": 0.3, "salut": 0.5, "coucou": 0.5, "bon weekend": 1,
        "bonne annee": 1.5, "joyeux noel": 1.5, "trop drole": 1.5, "qui d autre": 1.5,
    },
    "any": {"emoji_laugh": 1.5},
}

# Sentiment: positive terms are also what praise is made of, so the two cannot drift apart.
SENTIMENT: Terms = {
    "en": {
        "thank you": 1.5, "thanks": 1, "thank": 1, "love": 2, "loved": 2, "loving": 2, "amazing": 2.5,
        "awesome": 2.5, "great": 1.5, "fantastic": 2.5, "brilliant": 2.5, "perfect": 2, "best": 1.5,
        "good": 1, "nice": 1, "happy": 1.5, "glad": 1.5, "helpful": 2, "appreciate*": 2, "recommend": 1.5,
        "highly recommend": 3, "well done": 2, "great job": 2.5, "kudos": 2.5, "shoutout": 2,
        "shout out": 2, "impressed": 2, "beautiful": 2, "wonderful": 2.5, "delicious": 2, "cool": 1,
        "lovely": 2, "superb": 2.5, "outstanding": 2.5, "came in clutch": 2.5, "lifesaver": 2.5,
        "life saver": 2.5, "yay": 1.5, "congrat*": 2, "favourite": 2, "favorite": 2,
        "keep up the good work": 3, "useful": 1.5, "on time": 1, "props": 2, "such a joy": 1.5,
        "loyal customer": 1.5, "bad": -1.5, "hate": -2.5, "sad": -1.5, "upset": -2, "angry": -2.5,
        "not happy": -2.5, "unhappy": -2.5, "poor": -1.5, "problem*": -1, "issue*": -1, "sucks": -2.5,
        "crap": -2.5, "shit": -2, "#fail": -2.5, "ugh": -1.5, "seriously": -1.5, "smh": -2, "waste of": -2,
        "a waste": -2, "expensive": -1, "unpleasant": -2, "unhelpful": -2.5,
        # Zero-weight phrases hide the words inside them: "best regards" is not praise.
        "best regards": 0, "kind regards": 0, "good morning": 0, "good afternoon": 0,
        "thanks in advance": 0.3,
    },
    "fr": {
        "merci": 1, "merci beaucoup": 2, "un grand merci": 2.5, "genial": 2.5, "super": 1.5, "top": 1.5,
        "au top": 2.5, "parfait*": 2, "felicitations": 2.5, "bien joue": 2, "j adore": 2.5, "adore": 2,
        "j aime": 1.5, "content": 1.5, "contente": 1.5, "ravi*": 2, "satisfait*": 1.5,
        "tres satisfait": 2.5, "merveilleu*": 2.5, "magnifique": 2.5, "beau": 1, "trop beau": 2,
        "formidable": 2.5, "incroyable": 2, "trop bien": 2.5, "delicieu*": 2, "efficace*": 1.5,
        "reactif*": 1.5, "sympa": 1.5, "tres bien": 1.5, "nickel": 2, "chapeau": 2, "je recommande": 3,
        "coup de coeur": 2.5, "meilleur*": 1.5, "livraison rapide": 2, "belle*": 1, "trop belle*": 2,
        "tres bon": 1.5, "bon accueil": 1.5, "adorable": 2, "rien a redire": 2.5, "a l heure": 1,
        "remercie*": 2, "gentil*": 1.5, "exceptionnel*": 2, "je tenais a vous": 1, "pas content*": -2.5,
        "mecontent*": -2.5, "pas satisfait*": -2.5, "insatisfait*": -2.5, "triste": -1.5, "probleme*": -1,
        "souci*": -1, "mauvais*": -1.5, "bordel": -2, "chiant*": -2, "degoute*": -2.5, "affreux": -2,
        "trop cher": -2, "merde": -2, "putain": -1.5, "merci de": 0, "merci d avance": 0.3,
    },
    "any": {
        "bravo": 2, "excellent*": 2.5, "fan": 1.5, "emoji_heart": 2, "emoji_love": 2, "emoji_smile": 1,
        "emoji_thumbsup": 0.7, "emoji_party": 1.5, "emoji_pray": 1, "emoji_clap": 1.5, "emoji_fire": 1,
        "emoji_star": 1, "emoji_100": 1.5, "emoji_angry": -2.5, "emoji_sad": -1.5, "emoji_cry": -2,
        "emoji_thumbsdown": -2, "emoji_poop": -2, "emoji_facepalm": -2, "emoji_eyeroll": -1.5,
        "stars_5": 2.5, "stars_4": 1.5, "stars_2": -1.5, "stars_1": -2.5, "stars_0": -3,
    },
}

# Something went wrong: a breach of expectations even when the tone is calm.
# Bare negated auxiliaries weigh little alone and tip the balance next to a topic.
FAILURE: Terms = {
    "en": {
        "not working": 2, "doesn t work": 2, "don t work": 2, "stopped working": 2, "isn t working": 2,
        "non functioning": 2, "won t": 0.5, "can t": 0.5, "cannot": 0.5, "unable to": 1, "didn t": 0.5,
        "doesn t": 0.5, "isn t": 0.5, "aren t": 0.5, "wasn t": 0.5, "hasn t": 0.5, "haven t": 0.5,
        "did not": 0.5, "does not": 0.5, "will not": 0.5, "not work*": 1.5, "died": 1.5, "not yet": 1,
        "no longer": 1.5, "not showing": 1.5, "not loading": 2, "nothing": 0.5, "invalid": 1.5,
        "stuck": 1.5, "broken": 1.5, "broke": 1.5, "failed": 1.5, "failing": 1.5, "fails": 1.5,
        "crash*": 1.5, "missing": 1.5, "lost": 1, "wrong": 1.5, "damaged": 1.5, "ripped": 1.5, "late": 0.5,
        "delayed": 1, "cancelled": 1.5, "canceled": 1.5, "charged twice": 2, "overcharged": 2,
        "double charged": 2, "declined": 1, "locked out": 2, "hacked": 2, "not received": 2,
        "never arrived": 2.5, "never received": 2.5, "not arrived": 2, "hasn t arrived": 2,
        "didn t receive": 2, "haven t received": 2, "waiting": 1, "out of order": 1.5, "second time": 1.5,
        "2nd time": 1.5, "twice": 0.5,
    },
    "fr": {
        "ne fonctionne": 2, "fonctionne pas": 2, "fonctionne plus": 2, "marche pas": 2, "marche plus": 2,
        "pas recu*": 2, "rien recu": 2, "jamais recu*": 2.5, "pas arrive*": 2, "n arrive pas": 1.5,
        "impossible": 1.5, "bloque*": 1.5, "plante": 1.5, "erreur*": 1, "panne*": 1.5, "perdu*": 1,
        "casse*": 1.5, "abime*": 1.5, "endommage*": 1.5, "en retard": 1, "retard*": 1, "annule*": 1.5,
        "n est plus": 1, "s affiche pas": 1.5, "pas possible": 1, "facture deux fois": 2,
        "preleve deux fois": 2, "deux fois": 0.5, "deuxieme fois": 1.5, "2eme fois": 1.5,
    },
    "any": {"bug*": 1},
}

# Praise that is usually ironic when the same message reports a problem.
IRONIC_PRAISE = frozenset({
    "bravo", "great", "great job", "well done", "genial", "super", "top", "nice", "awesome", "wonderful",
    "perfect", "parfait", "love", "such a joy", "j adore", "adore", "chapeau", "felicitations", "emoji_clap",
    "thanks", "thank you", "merci", "merci beaucoup", "brilliant", "fantastic", "excellent",
})

# Unambiguous sarcasm: flips the praise of the message and counts as negative sentiment.
SARCASM: Terms = {
    "en": {
        "thanks for nothing": 3, "yeah right": 2, "love waiting": 2.5, "so much for": 2, "what a joke": 2.5,
        "oh great": 2, "just great": 2, "#not": 2, "nice try": 2,
    },
    "fr": {
        "merci pour rien": 3, "merci du cadeau": 2.5, "j adore attendre": 2.5, "quelle blague": 2.5,
    },
    "any": {"emoji_upsidedown": 1.5},
}

# The problem is solved: praise about past support, not a new request.
RESOLVED: Terms = {
    "en": {
        "solved": 1.5, "resolved": 1.5, "fixed now": 2, "got fixed": 2, "quick fix": 2, "for the fix": 2,
        "all fixed": 2, "works now": 2, "working again": 2,
    },
    "fr": {"resolu*": 1.5, "regle": 1, "remarche": 2, "fonctionne a nouveau": 2, "ca marche enfin": 2},
}

URGENCY: Terms = {
    "en": {
        "asap": 3, "as soon as possible": 3, "immediately": 2.5, "emergency": 3, "right now": 2,
    },
    "fr": {
        "urgence": 3, "immediatement": 2.5, "au plus vite": 3, "des que possible": 2.5, "tout de suite": 2,
        "scandale*": 3,
    },
    "any": {"urgent*": 3},
}

# Personal or account data, or a move to a private channel.
PRIVATE: Terms = {
    "en": {
        "dm": 1, "dms": 1, "direct message": 1, "private message": 1, "privately": 1, "in private": 1,
        "inbox": 1, "account number": 1, "order number": 1, "card number": 1, "phone number": 1,
        "my address": 1, "date of birth": 1,
    },
    "fr": {
        "en prive": 1, "message prive": 1, "mp": 1, "numero client": 1, "numero de client": 1,
        "numero de commande": 1, "numero de carte": 1, "numero de telephone": 1, "mon adresse": 1,
        "date de naissance": 1, "iban": 1, "rib": 1,
    },
    "any": {"emailaddr": 1, "phonenumber": 1, "cardnumber": 1, "longnumber": 1},
}

# Function words that tell the two languages apart; shared words ("on", "me", "a") are left out.
STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the an and is are was were i you my your it this that to of for with have has not no at be we"
        " they what why how when can do does did just still please thanks hi hello ll ve re been from"
        " will would could should there their our us he she him her".split()
    ),
    "fr": frozenset(
        "le la les des du un une et est je tu vous nous il elle ils pas ne que qui pour avec mais ou sur"
        " dans ce cette mon ma mes votre vos toujours depuis merci bonjour ca au aux ai suis etes sont"
        " tres rien de en j c d l qu n y leur nos notre chez".split()
    ),
}

# Languages the classifier does not decide in, by their stopwords: a message is "other" when one of them
# outweighs English and French (`classifier.model.decide_language`). Function words, greetings and thanks,
# unaccented like every term here. A word that is also an English or French stopword ("de", "la", "que",
# "no", "was") counts for both languages, so it never tips a message either way; a word common in English
# or French messages but in neither list is left out ("die", "con", "se", "es", "me", "non", "per", "come",
# "hier", "dit", "sim", "os", "van", "met", "ya", "sus", "tag", "hat", "dove"): it would count for the
# other language alone.
# Only the language field reads them: they are not features, so models trained before they were added
# stay valid (they are not in `cues.fingerprint`).
OTHER_STOPWORDS: dict[str, frozenset[str]] = {
    "es": frozenset(
        "la de en que y no un el los las del por una unos unas para pero muy esta este esto estos estas"
        " estoy estan tengo tiene tienen hola gracias mi mis su nadie todavia porque cuando donde como"
        " tambien aqui usted ustedes nosotros puedo puede hacer ser sido fue han hemos buenos buenas dias"
        " ayuda".split()
    ),
    "de": frozenset(
        "an was du des will der das dem ein eine einen einem einer und ist nicht ich sie wir ihr mir mich"
        " mein meine meinen noch immer auch aber oder mit von zu auf bei wie warum wann kann konnen habe"
        " haben wird werden bitte danke hallo guten schon sehr keine kein nur jetzt heute seit bis dass"
        " sind wurde vom zum zur nach dann wenn weil".split()
    ),
    "it": frozenset(
        "la il le un ma no ne lo gli della delle dei degli dello nel nella nei sono che una questo questa"
        " quello quella mio mia miei tuo suo sua ancora grazie ciao buongiorno buonasera perche quando"
        " cosa anche gia molto sempre niente nessuno ho hai abbiamo avete hanno essere stato stata siamo"
        " siete posso puoi potete vorrei di da del".split()
    ),
    "pt": frozenset(
        "de que no nos mais ou das dos da na para por com nao obrigado obrigada ola voce voces ainda"
        " minha meu meus minhas seu sua ja esta estou tenho tem muito foi ser quando onde porque isso isto"
        " ninguem tambem aqui pelo pela ao aos uma".split()
    ),
    "nl": frozenset(
        "de en is was we je het een ik jij wij niet nog ook maar voor zijn heb heeft hebben kan kunnen"
        " wil mijn uw deze waarom wanneer bij naar geen niets alstublieft bedankt hallo goedemorgen graag"
        " om zo wel".split()
    ),
}

# Word endings of those languages that French and English spell otherwise (unaccented: -ción, -zione, -ção,
# -ções; French and English write -tion): a word with one counts as one of the language's words, since
# short messages ("nombre de fichero demasiado largo") hold few function words. Only words longer than
# the ending by three letters or more.
OTHER_ENDINGS: dict[str, tuple[str, ...]] = {
    "es": ("cion", "ciones", "mente"),
    "it": ("zione", "zioni", "mente"),
    "pt": ("cao", "coes", "mente"),
}

NEGATORS = frozenset(
    {"not", "no", "never", "t", "without", "nothing", "pas", "jamais", "sans", "aucun", "aucune", "ni"}
)

# SMS abbreviations, contractions written without an apostrophe and frequent typos.
REWRITES: dict[str, str] = {
    "pls": "please", "plz": "please", "plse": "please", "u": "you", "ur": "your", "r": "are",
    "thx": "thanks", "thnx": "thanks", "thanx": "thanks", "tks": "thanks", "ty": "thank you",
    "tysm": "thank you so much", "im": "i m", "ive": "i ve", "dont": "don t", "doesnt": "doesn t",
    "didnt": "didn t", "cant": "can t", "wont": "won t", "isnt": "isn t", "wasnt": "wasn t",
    "arent": "aren t", "havent": "haven t", "hasnt": "hasn t", "couldnt": "couldn t", "aint": "ain t",
    "idk": "i don t know", "b4": "before", "2day": "today", "tmrw": "tomorrow", "bc": "because",
    "cuz": "because", "coz": "because", "acct": "account", "pwd": "password", "pkg": "package",
    "msg": "message", "rcvd": "received", "recd": "received", "recieved": "received", "recieve": "receive",
    "recived": "received", "arived": "arrived", "delievery": "delivery", "delivary": "delivery",
    "pakage": "package", "packge": "package", "acount": "account", "pasword": "password",
    "probelm": "problem", "problm": "problem", "refnd": "refund", "stp": "s il te plait",
    "svp": "s il vous plait", "svpl": "s il vous plait", "pk": "pourquoi", "pq": "pourquoi",
    "pkoi": "pourquoi", "pourkoi": "pourquoi", "prq": "pourquoi", "cmd": "commande", "cde": "commande",
    "cmde": "commande", "comande": "commande", "commende": "commande", "tjrs": "toujours",
    "tjs": "toujours", "tjr": "toujours", "toujour": "toujours", "bcp": "beaucoup", "mdp": "mot de passe",
    "pb": "probleme", "pbm": "probleme", "pblm": "probleme", "rdv": "rendez vous", "bjr": "bonjour",
    "slt": "salut", "dsl": "desole", "qd": "quand", "qnd": "quand", "g": "j ai", "jai": "j ai",
    "cest": "c est", "jsuis": "je suis", "jveux": "je veux", "jvoudrais": "je voudrais",
    "smth": "something", "chui": "je suis", "mtn": "maintenant", "auj": "aujourd hui", "ajd": "aujourd hui",
    "tt": "tout", "koi": "quoi", "tel": "telephone", "dispo": "disponible", "abo": "abonnement",
    "abonement": "abonnement", "num": "numero", "rbt": "remboursement", "rembt": "remboursement",
    "remb": "remboursement", "resu": "recu", "coli": "colis", "livraision": "livraison",
    "fonctione": "fonctionne", "foncionne": "fonctionne", "nn": "non", "everytime": "every time",
    "dissapointed": "disappointed", "dissapointing": "disappointing", "disapointed": "disappointed",
    "disapointing": "disappointing", "dissappointed": "disappointed",
}

EMOJI: dict[str, str] = {
    "👍": "emoji_thumbsup", "👎": "emoji_thumbsdown", "👏": "emoji_clap", "🙏": "emoji_pray",
    "❤": "emoji_heart", "♥": "emoji_heart", "💕": "emoji_heart", "💖": "emoji_heart", "💗": "emoji_heart",
    "💙": "emoji_heart", "💚": "emoji_heart", "💛": "emoji_heart", "💜": "emoji_heart", "🧡": "emoji_heart",
    "🖤": "emoji_heart", "🥰": "emoji_heart", "😘": "emoji_heart", "😍": "emoji_love", "🤩": "emoji_love",
    "😊": "emoji_smile", "🙂": "emoji_smile", "😀": "emoji_smile", "😃": "emoji_smile", "😄": "emoji_smile",
    "😁": "emoji_smile", "☺": "emoji_smile", "😂": "emoji_laugh", "🤣": "emoji_laugh", "😡": "emoji_angry",
    "😠": "emoji_angry", "🤬": "emoji_angry", "😤": "emoji_angry", "😢": "emoji_sad", "😞": "emoji_sad",
    "😔": "emoji_sad", "🙁": "emoji_sad", "☹": "emoji_sad", "😟": "emoji_sad", "😕": "emoji_sad",
    "😭": "emoji_cry", "🎉": "emoji_party", "🥳": "emoji_party", "🎊": "emoji_party", "🔥": "emoji_fire",
    "⭐": "emoji_star", "🌟": "emoji_star", "💯": "emoji_100", "💩": "emoji_poop", "🤦": "emoji_facepalm",
    "🙄": "emoji_eyeroll", "😒": "emoji_eyeroll", "🤞": "emoji_fingerscrossed", "🙃": "emoji_upsidedown",
    "🎁": "emoji_gift", "🏆": "emoji_trophy", ":)": "emoji_smile", ":-)": "emoji_smile",
    ":D": "emoji_smile", "<3": "emoji_heart", ":(": "emoji_sad", ":-(": "emoji_sad", ":'(": "emoji_cry",
}

# Every table by name, in the order the models read them: the learned model's cue features follow it.
TABLES: dict[str, Terms] = {
    "outage": OUTAGE,
    "delivery": DELIVERY,
    "billing": BILLING,
    "returns_refund": RETURNS_REFUND,
    "account": ACCOUNT,
    "technical": TECHNICAL,
    "product_question": PRODUCT_QUESTION,
    "complaint": COMPLAINT,
    "failure": FAILURE,
    "request": REQUEST,
    "campaign": CAMPAIGN,
    "partnership_press": PARTNERSHIP_PRESS,
    "spam": SPAM,
    "chatter": CHATTER,
    "sentiment": SENTIMENT,
    "sarcasm": SARCASM,
    "resolved": RESOLVED,
    "urgency": URGENCY,
    "private": PRIVATE,
}
