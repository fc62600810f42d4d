"""Who is in a story, without a model: the rules planner's cast, speakers and shot characters.

- Names. English: capitalised words that recur in the narration (quotes aside), at least once
  where a capital is not just a sentence start, and not only after "in", "at", "to" and the
  like (places), titles (Mr, Old, Captain) set aside. Chinese: the words before 说/道/问 and
  the other speech verbs, 老 + a surname (老陈), and the name after a kinship word (孙女小雨).
  Every name occurs at least twice in the story.
- Speakers: a quote's speech tag after it (“…” Mara asked / “……”小雨说) or before it (Mara
  said, “…” / 小雨说：“……”). A pronoun speaks for the shot's one character, if it has one.
- Who is in a shot: the names in its narration (a name inside a quote is spoken, not seen)
  and its speakers; a shot that names nobody but says "he"/"she"/他/她 shows the one
  character of the shot before it.
- Descriptions: a short English visual phrase from what the text says about age and gender
  ("Old Tom", "his granddaughter Mara", the pronouns used for them, 老/小 before a Chinese
  name). Writers refine them with `storyboard cast --set`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from storyboard_contract.cjk import HAN, HAN_CHAR
from storyboard_contract.wire import Character, DialogueLine

EN_SPEECH_VERBS = (
    "said|asked|cried|shouted|called|yelled|screamed|whispered|murmured|replied|answered|"
    "added|begged|pleaded|gasped|says|asks|replies|answers|whispers|shouts|cries"
)
ZH_SPEECH_VERBS = "说|道|问|喊|叫|答|嚷|吼|叹"

QUOTED = re.compile(r"“([^”]*)”|「([^」]*)」|『([^』]*)』|\"([^\"]*)\"")
_SPEECH_PUNCT = re.compile(r"[,，。.!！?？…~～、;；:：]")
_EN_WORD = re.compile(r"[A-Za-z0-9']+")

_CAPITALISED = re.compile(r"\b[A-Z][a-z]+\b")
_TITLES = {
    "Mr", "Mrs", "Ms", "Miss", "Dr", "Prof", "Professor", "Captain", "Capt", "Sir", "Lady",
    "Lord", "Uncle", "Aunt", "Auntie", "Old", "Young", "Little", "Big", "Saint", "St", "King",
    "Queen", "Prince", "Princess", "Detective", "Officer", "Sergeant", "Inspector", "Doctor",
    "Father", "Mother", "Brother", "Sister", "Grandpa", "Grandma", "Granny",
}
_NOT_NAMES = {
    "The", "An", "And", "But", "Or", "If", "Then", "When", "While", "After", "Before", "At",
    "In", "On", "By", "With", "From", "To", "Of", "For", "As", "It", "He", "She", "They", "We",
    "You", "His", "Her", "Their", "Our", "My", "Your", "This", "That", "These", "Those",
    "There", "Here", "What", "Who", "Why", "How", "Where", "Yes", "No", "Not", "Oh", "Ah",
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January",
    "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December", "Christmas", "Easter", "God", "Heaven", "Chapter", "Part", "Scene",
    # Words that often open a sentence and rarely appear in lower case in a short story.
    "Every", "One", "Far", "Now", "So", "Just", "All", "Some", "Once", "Later", "Soon",
    "Suddenly", "Still", "Even", "Only", "Each", "Both", "Again", "Outside", "Inside", "Above",
    "Below", "Across", "Through", "Nothing", "Everything", "Someone", "Nobody", "Everyone",
    "Perhaps", "Maybe", "Finally", "Slowly", "Together", "Behind", "Beyond", "Without",
    "Under", "Over", "Into", "Up", "Down", "Out", "Off", "Back", "Yet", "Because", "Although",
    "Though", "Since", "Until", "Like", "Its", "Let", "Meanwhile", "Somewhere", "Night",
    "Morning", "Evening", "Today", "Tonight", "Tomorrow", "Yesterday", "Silence",
}
_PLACE_BEFORE = re.compile(
    r"\b(?:in|at|on|to|from|into|onto|of|across|near|over|toward|towards|through|past|around|"
    r"outside|inside|beyond|under|behind)\s+$",
    re.IGNORECASE,
)
_STARTS_SENTENCE = re.compile(r"(?:^|[.!?…。！？][”’\"')）」』]*)[\s“\"'(（「『]*$")

_ZH_ADVERBS = (
    "轻声|低声|大声|小声|笑着|哭着|冷冷地|淡淡地|缓缓地|缓缓|忽然|突然|连忙|急忙|赶紧|喃喃地|喃喃|"
    "又|也|便|就|才|还|却|只"
)
# 道 alone or after 笑 is a speech verb only before punctuation or a quote (知道, 街道 are
# not); 喊道, 问道 and the like always are.
_ZH_VERB = (rf"(?:(?:{_ZH_ADVERBS}))?"
            rf"(?:(?:{ZH_SPEECH_VERBS.replace('|道', '')})道?|笑?道(?=[：:，,。“「\"]))")
_ZH_BOUNDARY = r"(?:^|(?<=[，。！？；：、”」』…\s,.!?;:]))"
_ZH_BEFORE_SPEECH = re.compile(rf"{_ZH_BOUNDARY}(?P<who>[{HAN}]{{1,3}}?){_ZH_VERB}")
# 老 + a common surname: how Chinese stories name an older man or woman (老陈, 老王).
_SURNAMES = ("陈王李张刘赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏"
             "卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯")
_ZH_ELDER = re.compile(f"老[{_SURNAMES}]")
_ZH_KIN = ("孙女|孙子|女儿|儿子|妻子|丈夫|哥哥|姐姐|弟弟|妹妹|妈妈|爸爸|母亲|父亲|"
           "朋友|邻居|徒弟|师父")
_ZH_AFTER_KIN = re.compile(rf"(?:{_ZH_KIN})(?P<who>[{HAN}]{{2}})")
_ZH_NOT_NAMES = {
    "他", "她", "它", "我", "你", "您", "他们", "她们", "我们", "你们", "大家", "有人", "人们",
    "别人", "众人", "谁", "听", "据", "小", "又", "也", "就", "便", "才", "还", "再", "却", "只",
    "都", "可", "虽",
}

_EN_WHO = r"[A-Z][a-z]+|he|she|[Tt]he(?: [a-z]+){1,3}?"
_EN_TAG_AFTER = re.compile(
    rf"^\s*,?\s*(?:(?P<who>{_EN_WHO})\s+(?:{EN_SPEECH_VERBS})\b"
    rf"|(?:{EN_SPEECH_VERBS})\s+(?P<who2>[A-Z][a-z]+|the(?: [a-z]+){{1,3}}?)(?=\s*[,.!?;:]|\s*$))"
)
_EN_TAG_BEFORE = re.compile(rf"(?P<who>{_EN_WHO})\s+(?:{EN_SPEECH_VERBS})\s*[,:]?\s*$")
_ZH_TAG_AFTER = re.compile(rf"^\s*(?P<who>[{HAN}]{{1,4}}?){_ZH_VERB}")
_ZH_TAG_BEFORE = re.compile(rf"(?P<who>[{HAN}]{{1,4}}?){_ZH_VERB}\s*[：:，,]?\s*$")

# Pronouns by gender: any of them in a shot, and those that refer back to the subject of
# their own sentence ("Tom waited with a parcel under his arm"; "her" may be someone else).
_HE = re.compile(r"\b(?:he|him|his|himself)\b|他", re.IGNORECASE)
_SHE = re.compile(r"\b(?:she|her|hers|herself)\b|她", re.IGNORECASE)
_HIS_OWN = re.compile(r"\b(?:his|himself)\b")
_HER_OWN = re.compile(r"\b(?:hers|herself)\b")
# A sentence that opens with a pronoun: it goes on about the previous sentence's person.
_OPENS_HE = re.compile(r"^\W*(?:He|His)\b|^\W*他")
_OPENS_SHE = re.compile(r"^\W*(?:She|Her)\b|^\W*她")
_PRONOUN_GENDER = {"he": "male", "He": "male", "他": "male",
                   "she": "female", "She": "female", "她": "female"}
_NOUN_GENDER = {"man": "male", "boy": "male", "woman": "female", "girl": "female"}

# What the words around a name say about a person: (age, noun); None where they say nothing.
_EN_HINTS: dict[str, tuple[str | None, str | None]] = {
    "old": ("elderly", None), "elderly": ("elderly", None), "young": ("young", None),
    "little": ("young", None), "grandpa": ("elderly", "man"), "grandma": ("elderly", "woman"),
    "granny": ("elderly", "woman"), "mr": (None, "man"), "sir": (None, "man"),
    "uncle": (None, "man"), "king": (None, "man"), "prince": ("young", "man"),
    "father": (None, "man"), "brother": (None, "man"), "mrs": (None, "woman"),
    "ms": (None, "woman"), "miss": (None, "woman"), "lady": (None, "woman"),
    "aunt": (None, "woman"), "queen": (None, "woman"), "princess": ("young", "woman"),
    "mother": (None, "woman"), "sister": (None, "woman"),
    "granddaughter": ("young", "woman"), "daughter": ("young", "woman"),
    "grandson": ("young", "man"), "son": ("young", "man"), "girl": (None, "girl"),
    "boy": (None, "boy"), "wife": (None, "woman"), "husband": (None, "man"),
    "child": (None, "child"), "kid": (None, "child"),
}
_ZH_HINTS: dict[str, tuple[str | None, str | None]] = {
    "孙女": (None, "girl"), "孙子": (None, "boy"), "女儿": ("young", "woman"),
    "儿子": ("young", "man"), "妻子": (None, "woman"), "丈夫": (None, "man"),
    "哥哥": ("young", "man"), "姐姐": ("young", "woman"), "弟弟": (None, "boy"),
    "妹妹": (None, "girl"), "妈妈": (None, "woman"), "爸爸": (None, "man"),
    "母亲": (None, "woman"), "父亲": (None, "man"), "爷爷": ("elderly", "man"),
    "奶奶": ("elderly", "woman"), "陌生人": (None, "stranger"), "老人": ("elderly", None),
    "孩子": (None, "child"), "女孩": (None, "girl"), "男孩": (None, "boy"),
    "姑娘": ("young", "woman"), "老": ("elderly", None), "小": ("young", None),
}
_CHILDREN = {"girl", "boy", "child"}


def is_speech(quote: str) -> bool:
    """A quote that is spoken, not a name, a title or a sound: long enough or punctuated."""
    long_enough = len(_EN_WORD.findall(quote)) >= 3 or len(HAN_CHAR.findall(quote)) >= 6
    return bool(quote) and (long_enough or bool(_SPEECH_PUNCT.search(quote)))


def narration(text: str) -> str:
    """`text` with its quotes taken out."""
    return " ".join(QUOTED.sub(" ", text).split())


def _is_han(name: str) -> bool:
    return bool(HAN_CHAR.match(name))


def mentions(text: str, name: str) -> list[int]:
    """Where `name` occurs in `text` (a whole word for names in Latin letters)."""
    if _is_han(name):
        return [m.start() for m in re.finditer(re.escape(name), text)]
    return [m.start() for m in re.finditer(rf"\b{re.escape(name)}\b", text)]


def _english_names(story: str, sentences: list[str]) -> list[str]:
    """Capitalised words seen twice, and as a name at least once: as a speech tag's speaker,
    or not only after a preposition (as places are) and either not at a sentence start or
    never written in lower case."""
    seen: Counter[str] = Counter()
    named: set[str] = set()
    free: set[str] = set()  # seen at least once not right after a preposition
    for sentence in sentences:
        text = narration(sentence)
        for match in _CAPITALISED.finditer(text):
            word, before = match.group(), text[: match.start()]
            if word in _NOT_NAMES:
                continue
            following = text[match.end():].lstrip()
            if word in _TITLES and _CAPITALISED.match(following):
                continue
            seen[word] += 1
            if not _PLACE_BEFORE.search(before):
                free.add(word)
                if not _STARTS_SENTENCE.search(before):
                    named.add(word)
        named.update(line.who for line in spoken(sentence) if line.who in seen)
    lower = set(re.findall(r"\b[a-z]+\b", story))
    named.update(w for w in free if w.lower() not in lower)
    return [w for w in seen if w in named and seen[w] >= 2]


def _chinese_names(story: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for pattern in (_ZH_BEFORE_SPEECH, _ZH_AFTER_KIN):
        for match in pattern.finditer(story):
            found.append((match.start("who"), match.group("who")))
    found += [(m.start(), m.group()) for m in _ZH_ELDER.finditer(story)]
    names: list[str] = []
    for _, name in sorted(found):
        if name not in _ZH_NOT_NAMES and name not in names and story.count(name) >= 2:
            names.append(name)
    return names


def find_names(story: str, sentences: list[str]) -> list[str]:
    """The story's character names, in order of first appearance."""
    names = _english_names(story, sentences) + _chinese_names(story)
    return sorted(names, key=lambda n: mentions(story, n)[0])


def _words_before(text: str, at: int) -> list[str]:
    return re.findall(r"[A-Za-z]+", text[max(0, at - 40): at])[-2:]


def describe(name: str, sentences: list[str], names: list[str]) -> str:
    """A short visual description of `name` from the text (see the module doc)."""
    age: str | None = None
    noun: str | None = None
    he = she = 0
    for k, sentence in enumerate(sentences):
        if not mentions(sentence, name):
            continue
        hints: list[tuple[str | None, str | None]] = []
        for at in mentions(sentence, name):
            if _is_han(name):
                hints += [_ZH_HINTS[w] for w in _ZH_HINTS
                          if sentence[:at].endswith(w) or name.startswith(w) or name == w]
            else:
                hints += [_EN_HINTS[w.lower()] for w in _words_before(sentence, at)
                          if w.lower() in _EN_HINTS]
        for hint_age, hint_noun in hints:
            age, noun = age or hint_age, noun or hint_noun
        # Pronouns speak of this person when no other character is named around them; the
        # next sentence's opening pronoun only when this sentence has none (in "Tom handed
        # her the parcel. She ...", she is not Tom).
        if any(mentions(sentence, n) for n in names if n != name):
            continue
        said = narration(sentence)
        he += len(_HIS_OWN.findall(said))
        she += len(_HER_OWN.findall(said))
        following = narration(sentences[k + 1]) if k + 1 < len(sentences) else ""
        if not any(mentions(following, n) for n in names) and not (
                _HE.search(said) or _SHE.search(said)):
            he += bool(_OPENS_HE.search(following))
            she += bool(_OPENS_SHE.search(following))
    if noun is None and he != she:
        noun = "man" if he > she else "woman"
    if noun in _CHILDREN or noun == "stranger":
        return noun
    return " ".join(w for w in (age, noun or "person") if w)


def find_cast(story: str, sentences: list[str]) -> list[Character]:
    names = find_names(story, sentences)
    return [Character(name=n, description=describe(n, sentences, names)) for n in names]


@dataclass(frozen=True)
class Spoken:
    """A spoken line in a shot, where its speech tag names who said it."""

    line: str
    who: str | None  # as written: a name, a pronoun, "the old fisherman"; None: untagged
    start: int  # the quote and its tag, as a span of the shot's text
    end: int


def _tag(text: str, start: int, end: int) -> tuple[str | None, int, int]:
    """Who a quote's speech tag names, and the span of quote and tag. A tag right before the
    quote (小雨说：“……”) wins over one after it, which may introduce the next quote."""
    for pattern in (_EN_TAG_BEFORE, _ZH_TAG_BEFORE):
        match = pattern.search(text[:start])
        if match:
            return match.group("who"), match.start(), end
    for pattern in (_EN_TAG_AFTER, _ZH_TAG_AFTER):
        match = pattern.match(text[end:])
        if match:
            who = match.group("who") or match.groupdict().get("who2")
            return who, start, end + match.end()
    return None, start, end


def spoken(text: str) -> list[Spoken]:
    """The spoken lines in `text`, with their speech tags."""
    lines = []
    for match in QUOTED.finditer(text):
        quote = next(g for g in match.groups() if g is not None).strip()
        line = quote.rstrip(",，、 ")
        if line and is_speech(quote):
            who, start, end = _tag(text, match.start(), match.end())
            lines.append(Spoken(line, who, start, end))
    return lines


def _action(text: str, lines: list[Spoken]) -> str:
    """What we see: the text without its spoken lines and their tags."""
    kept, at = [], 0
    for line in lines:
        kept.append(text[at: line.start])
        at = line.end
    kept.append(text[at:])
    action = " ".join("".join(kept).split()).strip(" ,，、;；:：")
    action = re.sub(r"\s+([,.!?;:])", r"\1", action)
    action = re.sub(r"([.。!！?？…])[\s.。,，]+(?=[.。,，\s]|$)", r"\1", action)
    action = re.sub(r"^[.。!！?？…]+\s*", "", action)
    return action[:1].upper() + action[1:]


@dataclass(frozen=True)
class ShotPeople:
    characters: list[str]
    dialogue: list[DialogueLine]
    action: str


def gender(character: Character) -> str | None:
    """male, female or None (not known), from the description's words."""
    words = set(re.findall(r"[a-z]+", character.description.lower()))
    found = {g for noun, g in _NOUN_GENDER.items() if noun in words}
    return found.pop() if len(found) == 1 else None


class Casting:
    """Who is in each shot of a story with this cast. Pronouns are resolved where clear, and
    what they reveal is kept: once "she asked" was Lin, Lin is a woman, so a later "he" is
    not Lin, and her description says so."""

    def __init__(self, cast: list[Character]) -> None:
        self.cast = cast
        self.genders = {c.name: gender(c) for c in cast}

    def characters(self) -> list[Character]:
        """The cast, a description that said "person" now naming the gender learned."""
        nouns = {"male": "man", "female": "woman"}
        return [c.model_copy(update={"description": re.sub(
                    r"\bperson\b", nouns[self.genders[c.name] or ""], c.description)})
                if gender(c) is None and self.genders[c.name] else c
                for c in self.cast]

    def shots(self, texts: list[str]) -> list[ShotPeople]:
        """Characters, dialogue and action of each shot's text, in story order."""
        names = [c.name for c in self.cast]
        result: list[ShotPeople] = []
        previous: list[str] = []
        for text in texts:
            lines = spoken(text)
            seen = narration(text)
            tagged = [self._speaker(line.who, []) for line in lines]
            at = {n: min(mentions(seen, n), default=len(seen)) for n in names
                  if mentions(seen, n) or n in tagged}
            present = sorted(at, key=lambda n: at[n])
            if not present:
                genders = ({"male"} if _HE.search(seen) else set()) | (
                    {"female"} if _SHE.search(seen) else set())
                carried = self._referent(previous, genders)
                present = [carried] if carried else []
            dialogue = [DialogueLine(speaker=self._speaker(line.who, present), line=line.line)
                        for line in lines]
            result.append(ShotPeople(present, dialogue, _action(text, lines)))
            previous = present
        return result

    def _speaker(self, who: str | None, present: list[str]) -> str | None:
        if who is None:
            return None
        if who in _PRONOUN_GENDER:
            return self._referent(present, {_PRONOUN_GENDER[who]})
        for c in self.cast:
            if who == c.name or who.endswith(c.name):
                return c.name
        # "the old fisherman" is a speaker; of a Chinese phrase before 说 (林看着他说) only a
        # short one is a person's name or role.
        return who if len(who) <= (3 if _is_han(who) else 40) else None

    def _referent(self, candidates: list[str], genders: set[str]) -> str | None:
        """The one candidate that pronouns of `genders` can mean: of those a shot showed, the
        only one whose gender (when known) fits ("Lin looked up at Tom. 'Why?' she asked":
        Lin, once Tom is known to be a man)."""
        if len(genders) != 1:
            return None
        (pronoun,) = genders
        fitting = [n for n in candidates if self.genders[n] in (None, pronoun)]
        if len(fitting) != 1:
            return None
        self.genders[fitting[0]] = pronoun
        return fitting[0]
