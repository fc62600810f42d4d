"""Who is in a story, without a model: the rules planner's cast, speakers and shot characters.

- The cast: gpu_daemon.planner.names finds the names and roles; the user's edits (CastEdits)
  then have the last word: removed names are never cast, aliases join forms into one person,
  and the user's characters are kept with the user's descriptions.
- Speakers, read paragraph by paragraph:
  1. a quote's speech tag after it (“…” Mara asked / “……”小雨说) or before it (Mara said, “…”
     / 小雨说：“……”) names the speaker, or a pronoun does;
  2. a tag that names neither (阿梅看了一会儿，抿着嘴笑道：“……”: 抿着嘴 is how, not who), or
     no tag, leaves the speaker to the person the sentence opens with (王奶奶笑着接过钱，……：
     “……”), then the person right after the quote (“没关系。”阿梅摇摇头), then the speaker of
     the quote just before when only its tag lies between (“Bells,” Ada said. “We follow it
     in.”), then the person of the sentence before (Mara saw it first and gasped. “Hurry!”);
  3. a pronoun speaks for the most recent person it fits (he/she and what is known of their
     gender), in its paragraph or the three before; failing that, for the only character of
     the cast it fits. A resolved pronoun tells that person's gender from then on.
  A role that says its name (“I'm Tilly.”, “我叫小杰”) is that person.
- Who is in a shot: the people its narration mentions in any of their forms (a name inside a
  quote is spoken, not seen) and its speakers; a shot that names nobody but says "he"/"she"/
  他/她 shows the one fitting character of the shot before it.
- Descriptions: a short English visual phrase from what the text says about age and gender
  ("Old Tom", "Walter, an old man", "his granddaughter Mara", 十九岁, the pronouns used for
  them, 老/小 before a Chinese name), unless the user gave one.
- A shot's action is its text without its spoken lines; what a speech tag went on to say
  (“…,” she said, moving her bag) joins the sentence before it, or keeps its tag.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from gpu_daemon.planner.names import (
    EN_SPEECH_VERBS,
    QUOTED,
    ROLE_HINTS,
    ROLE_TWINS,
    ZH_VERB,
    Found,
    find_people,
    is_han,
    mention_pattern,
    narration,
)
from storyboard_contract.cjk import HAN, HAN_CHAR
from storyboard_contract.wire import Character, DialogueLine, UserCast

_SPEECH_PUNCT = re.compile(r"[,，。.!！?？…~～、;；:：]")
_EN_WORD = re.compile(r"[A-Za-z0-9']+")

_TITLED = r"(?:(?:Mr|Mrs|Ms|Miss|Dr|Captain|Old|Young|Little)\.?\s+)?[A-Z][a-z]+"
_EN_WHO = rf"{_TITLED}|he|she|[Tt]he(?: [a-z]+){{1,3}}?"
_EN_TAG_AFTER = re.compile(
    rf"^\s*,?\s*(?:(?P<who>{_EN_WHO})\s+(?:{EN_SPEECH_VERBS})\b"
    rf"|(?:{EN_SPEECH_VERBS})\s+(?P<who2>{_TITLED}|the(?: [a-z]+){{1,3}}?)(?=\s*[,.!?;:]|\s*$))"
)
_EN_TAG_BEFORE = re.compile(rf"(?P<who>{_EN_WHO})\s+(?:{EN_SPEECH_VERBS})\s*[,:]?\s*$")
_TAG_REACH = 80
_ZH_TAG_AFTER = re.compile(rf"^\s*(?P<who>[{HAN}]{{1,4}}?){ZH_VERB}")
_ZH_TAG_BEFORE = re.compile(rf"(?P<who>[{HAN}]{{1,4}}?){ZH_VERB}\s*[：:，,]?\s*$")
_SENTENCE_END = re.compile(r"[.!?。！？…]+[”’\"')）」』]*\s*")
# Between two quotes of one speaker: nothing, or what the first one's tag went on to say
# (“…,” she said quietly. “…”).
_TAG_LEFTOVER = re.compile(r"^[\s,.;:，。：；]*(?:[a-z][^.!?“”\"]*[.!?]?\s*)?$")
# A beat between two quotes, in one sentence: “没关系。”阿梅摇摇头，“画得挺好看的。”
_BEAT = re.compile(r"[^“”\"。！？.!?]{1,30}[，,]\s*(?=[“\"])")
# A line in which the speaker says who they are.
_SELF_NAMED = re.compile(rf"\b(?:I'm|I am|[Mm]y name is|[Nn]ame's)\s+(?P<who>{_TITLED})\b"
                         rf"|我(?:叫|是)(?P<han>[{HAN}]{{1,3}})")

# Pronouns by gender: any of them in a shot, and those that refer back to the subject of
# their own sentence ("Tom waited with a parcel under his arm"; "her" may be someone else).
_HE = re.compile(r"\b(?:he|him|his|himself)\b|他", re.IGNORECASE)
_SHE = re.compile(r"\b(?:she|her|hers|herself)\b|她", re.IGNORECASE)
# Pronouns that may mean someone else than the sentence's subject: he, she, him, and "her" as
# an object ("handed her the parcel", not "opened her shop").
_OTHERS = re.compile(r"\b(?:he|she|him)\b|\bher\b(?=\s+(?:a|an|the|this|that|it|to|and|one|"
                     r"some|in|on|at|with|for|from)\b|\s*[,.!?;:]|$)|他|她", re.IGNORECASE)
# "Her grandson Sam ...": the sentence before was about a grandparent.
_GRANDCHILD = re.compile(r"^\W*(?:Her|His)\s+grand(?:son|daughter|child|children)\b|^\W*[他她]的孙")
_HIS_OWN = re.compile(r"\b(?:his|himself)\b")
_HER_OWN = re.compile(r"\b(?:hers|herself)\b")
# A sentence that opens with a pronoun: it goes on about the previous sentence's person.
_OPENS_HE = re.compile(r"^\W*(?:He|His)\b|^\W*他")
_OPENS_SHE = re.compile(r"^\W*(?:She|Her)\b|^\W*她")
_PRONOUN_GENDER = {"he": "male", "He": "male", "他": "male",
                   "she": "female", "She": "female", "她": "female"}
_NOUN_GENDER = {"man": "male", "boy": "male", "woman": "female", "girl": "female"}
_GENDER_NOUN = {"male": "man", "female": "woman"}

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
    "大爷": ("elderly", "man"), "大妈": ("elderly", "woman"), "婆婆": ("elderly", "woman"),
    "阿姨": (None, "woman"), "先生": (None, "man"), "太太": (None, "woman"),
    "小姐": ("young", "woman"),
}
_ROLE_NOUNS = {"male": "man", "female": "woman", None: None}
_CHILDREN = {"girl", "boy", "child"}
# An age the text gives: "who was nine", "She was seventy-two", 十九岁.
_EN_NUMBERS = {w: n for n, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen"))}
_EN_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
            "eighty": 80, "ninety": 90}
_EN_AGE = re.compile(
    rf"\b(?:was|is|aged|turned|turns)\s+(?P<age>\d{{1,3}}|(?:{'|'.join(_EN_TENS)})"
    rf"(?:-(?:{'|'.join(_EN_NUMBERS)}))?|{'|'.join(_EN_NUMBERS)})\b(?!\s+(?:years|minutes))"
)
_ZH_DIGITS = {c: n for n, c in enumerate("零一二三四五六七八九")}
_ZH_AGE = re.compile(r"(?P<age>[一二三四五六七八九十\d]{1,4})岁")


def is_speech(quote: str) -> bool:
    """A quote that is spoken, not a name, a title or a sound: long enough or punctuated."""
    long_enough = len(_EN_WORD.findall(quote)) >= 3 or len(HAN_CHAR.findall(quote)) >= 6
    return bool(quote) and (long_enough or bool(_SPEECH_PUNCT.search(quote)))


@dataclass(frozen=True)
class CastEdits:
    """The user's word on the cast, kept across re-plans (`storyboard cast`).

    - aliases: a name -> the other names of the same person (Lin -> [林]); the person is
      cast under the name, and every form counts as a mention;
    - not_characters: names that are not people (a place, a boat): never cast, never a speaker;
    - characters: the user's characters, kept with their descriptions, and shown in every shot
      whose narration names them or an alias.
    The defaults change nothing.
    """

    aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    not_characters: Collection[str] = ()
    characters: Sequence[Character] = ()

    def removed(self, name: str) -> bool:
        return _folded(name) in {_folded(n) for n in self.not_characters}

    @classmethod
    def of(cls, user: UserCast) -> CastEdits:
        """The user's word as the daemon receives it (PlanRequest.cast)."""
        return cls(aliases=user.aliases, not_characters=user.not_characters,
                   characters=user.characters)


NO_EDITS = CastEdits()


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


@dataclass
class Person:
    """A member of the cast while the story is read: every form it is mentioned by, and what
    is learned of it."""

    name: str
    forms: list[str]
    description: str = ""  # the user's, if given: it is kept
    gender: str | None = None
    given: bool = False  # the user's character
    role: bool = False  # a role no name was given to ("the stranger")
    patterns: list[re.Pattern[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        self.patterns = [mention_pattern(f) for f in self.forms]

    def at(self, text: str) -> list[int]:
        """Where `text` mentions this person."""
        return sorted({m.start() for p in self.patterns for m in p.finditer(text)})

    def is_called(self, who: str) -> bool:
        """Whether a speech tag's words name this person ("Mrs. Hale" is Hale, "the old man"
        is the role)."""
        folded = _folded(who)
        return any(folded == _folded(f) or folded.endswith(" " + _folded(f))
                   or (f in ROLE_HINTS and folded.endswith(_folded(f))) for f in self.forms)


@dataclass(frozen=True)
class Spoken:
    """A spoken line, where its speech tag names who said it."""

    line: str
    who: str | None  # as written: a name, a pronoun, "the old fisherman"; None: untagged
    start: int  # the quote and its tag, as a span of the text
    end: int
    quote_start: int  # the quote alone
    quote_end: int


def _tag(text: str, start: int, end: int) -> tuple[str | None, int, int]:
    """Who a quote's speech tag names, and the span of quote and tag. A tag right before the
    quote (小雨说：“……”) wins over one after it, which may introduce the next quote."""
    # A tag before a quote is a few words: look no further back (a long paragraph would make
    # the search quadratic).
    window = max(0, start - _TAG_REACH)
    for pattern in (_EN_TAG_BEFORE, _ZH_TAG_BEFORE):
        match = pattern.search(text, window, start)
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
            lines.append(Spoken(line, who, start, end, match.start(), match.end()))
    return lines


def english_number(text: str) -> int | None:
    """A number written in digits or in English words up to ninety-nine ("seventy",
    "thirty-five", "12"); None for anything else."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    tens, _, ones = text.partition("-")
    if ones:
        return _EN_TENS[tens] + _EN_NUMBERS[ones] if tens in _EN_TENS and ones in _EN_NUMBERS \
            else None
    return _EN_TENS.get(text, _EN_NUMBERS.get(text))


def _age_class(years: int) -> str | None:
    return "young" if years < 30 else "elderly" if years >= 60 else None


def _stated_age(text: str) -> str | None:
    """The age class of an age the text states, if any."""
    match = _EN_AGE.search(text)
    if match:
        return _age_class(english_number(match.group("age")) or 0)
    match = _ZH_AGE.search(text)
    if match:
        digits = match.group("age")
        if digits.isdigit():
            return _age_class(int(digits))
        tens, _, ones = digits.partition("十")
        if "十" not in digits:
            return _age_class(_ZH_DIGITS.get(digits, 0))
        return _age_class(10 * (_ZH_DIGITS.get(tens, 1) if tens else 1) + _ZH_DIGITS.get(ones, 0))
    return None


def _words_before(text: str, at: int) -> list[str]:
    return re.findall(r"[A-Za-z]+", text[max(0, at - 40): at])[-2:]


def describe(person: Person, sentences: list[str], cast: list[Person]) -> tuple[str, str | None]:
    """A short visual description of `person` from the text (see the module doc), and the
    gender it tells."""
    age: str | None = None
    noun: str | None = None
    he = she = 0
    for form in person.forms:
        hint_age, hint_gender = ROLE_HINTS.get(form, (None, None))
        role_noun = ROLE_TWINS.get(form, form).split()[-1]
        age = age or hint_age
        noun = noun or (role_noun if role_noun in _CHILDREN else _ROLE_NOUNS[hint_gender])
    for k, sentence in enumerate(sentences):
        found = person.at(sentence)
        if not found:
            continue
        hints: list[tuple[str | None, str | None]] = []
        for at in found:
            if HAN_CHAR.match(sentence[at]):
                hints += [_ZH_HINTS[w] for w in _ZH_HINTS if sentence[:at].endswith(w)
                          or any(f.startswith(w) or f.endswith(w) for f in person.forms
                                 if is_han(f) and f not in ROLE_HINTS)]
            else:
                hints += [_EN_HINTS[w.lower()] for w in _words_before(sentence, at)
                          if w.lower() in _EN_HINTS]
        for hint_age, hint_noun in hints:
            age, noun = age or hint_age, noun or hint_noun
        # Pronouns speak of this person when no other character is named around them; the
        # next sentence's opening pronoun only when this sentence has none (in "Tom handed
        # her the parcel. She ...", she is not Tom).
        if any(other.at(sentence) for other in cast if other is not person):
            continue
        said = narration(sentence)
        age = age or _stated_age(said)
        he += len(_HIS_OWN.findall(said))
        she += len(_HER_OWN.findall(said))
        following = narration(sentences[k + 1]) if k + 1 < len(sentences) else ""
        if not _OTHERS.search(said):
            opens_he, opens_she = bool(_OPENS_HE.search(following)), bool(
                _OPENS_SHE.search(following))
            he, she = he + opens_he, she + opens_she
            if _GRANDCHILD.search(following):
                age = age or "elderly"
            elif opens_he or opens_she:
                age = age or _stated_age(following)
    if noun is None and he != she:
        noun = "man" if he > she else "woman"
    gender = _NOUN_GENDER.get(noun or "")
    if noun in _CHILDREN or noun == "stranger":
        return noun or "", gender
    return " ".join(w for w in (age, noun or "person") if w), gender


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


def _apply_edits(found: list[Found], edits: CastEdits) -> list[Person]:
    """The people found, as the user's edits say: removed names gone, aliases joined, the
    user's characters kept with their descriptions."""
    people: list[Person] = []
    for f in found:
        forms = [form for form in f.forms if not edits.removed(form)]
        if not edits.removed(f.name) and forms:
            people.append(Person(f.name, forms, role=f.role is not None))
    groups = {name: [name, *others] for name, others in edits.aliases.items()}
    for character in edits.characters:
        groups.setdefault(character.name, [character.name])
    given = {c.name: c for c in edits.characters}
    for name, forms in groups.items():
        folded = {_folded(f) for f in forms}
        joined = [p for p in people if folded & {_folded(f) for f in p.forms}]
        if not joined and name not in given:
            continue  # aliases of no one the story casts
        first = min((people.index(p) for p in joined), default=len(people))
        all_forms = list(dict.fromkeys([name, *forms, *(f for p in joined for f in p.forms)]))
        person = Person(name, [f for f in all_forms if not edits.removed(f) or f == name])
        if name in given:
            person.description, person.given = given[name].description, True
        people = [p for p in people if p not in joined]
        people.insert(first, person)
    return people


class Casting:
    """The cast of a story and who speaks each of its lines, read once (see the module doc);
    then who is in each shot. What pronouns reveal is kept: once "she asked" was Lin, Lin is a
    woman, so a later "he" is not Lin, and her description says so."""

    def __init__(self, story: str, paragraphs: list[list[str]],
                 edits: CastEdits = NO_EDITS) -> None:
        """`paragraphs`: the story's sentences, paragraph by paragraph."""
        self.edits = edits
        sentences = [s for p in paragraphs for s in p]
        self._paragraphs = ["".join(p) for p in paragraphs]
        tags = {line.who for p in self._paragraphs for line in spoken(p) if line.who}
        found, seldom = find_people(story, sentences, tags)
        self.people = _apply_edits(found, edits)
        # Roles too seldom mentioned to be cast may still be who a "he" or "she" means: the
        # speaker is then "the old fisherman", not the cast member mentioned before him.
        self._bystanders = [Person(f.name, f.forms, gender=ROLE_HINTS[f.forms[-1]][1], role=True)
                            for f in seldom if not edits.removed(f.name)]
        self._describe(sentences)
        self.lines = self._read_speakers()
        self._join_self_named()
        self._describe(sentences)

    def _describe(self, sentences: list[str]) -> None:
        for person in self.people:
            description, told = describe(person, sentences, self.people)
            person.gender = person.gender or told
            if not person.given:
                person.description = description
            elif person.gender is None:
                person.gender = gender(Character(name=person.name,
                                                 description=person.description))

    def characters(self) -> list[Character]:
        """The cast, a description that said "person" now naming the gender learned."""
        result = []
        for p in self.people:
            description = p.description
            if not p.given and p.gender and gender(Character(name="_", description=description)
                                                   ) is None:
                description = re.sub(r"\bperson\b", _GENDER_NOUN[p.gender], description)
                description = description or _GENDER_NOUN[p.gender]
            result.append(Character(name=p.name, description=description))
        return result

    def person(self, name: str) -> Person:
        return next(p for p in self.people if p.name == name)

    def mention_counts(self, story: str) -> dict[str, int]:
        """How often the story mentions each person (in any form)."""
        return {p.name: len(p.at(story)) for p in self.people}

    # --- speakers ------------------------------------------------------------------------

    def _read_speakers(self) -> list[tuple[str, str | None]]:
        """Every spoken line of the story, in order, with its speaker (a cast name, a role as
        written, or None)."""
        result: list[tuple[str, str | None]] = []
        recent: list[list[tuple[int, Person]]] = []  # mentions of the paragraphs before
        for paragraph in self._paragraphs:
            seen = narration(paragraph)
            here = sorted(((at, p) for p in [*self.people, *self._bystanders]
                           for at in p.at(seen)), key=lambda mention: mention[0])
            previous: Spoken | None = None
            said: str | None = None
            self._ends = [m.end() for m in _SENTENCE_END.finditer(paragraph)]
            for line in spoken(paragraph):
                speaker = self._speaker(paragraph, seen, line, here, recent, previous, said)
                result.append((line.line, speaker))
                previous, said = line, speaker
            recent = [here, *recent][:3]
        return result

    def _speaker(self, text: str, seen: str, line: Spoken, here: list[tuple[int, Person]],
                 recent: list[list[tuple[int, Person]]], previous: Spoken | None,
                 said: str | None) -> str | None:
        who = line.who
        if who is not None:
            if self.edits.removed(who):
                return None
            named = next((p for p in self.people if p.is_called(who)), None)
            if named:
                return named.name
            if who in _PRONOUN_GENDER:
                return self._resolve(_PRONOUN_GENDER[who], line.quote_start, here, recent)
            if not is_han(who):
                return who  # "the old fisherman": a speaker, not one of the cast
        # No tag, or one that names no one (抿着嘴笑道): the sentence's own person, ...
        ends = self._ends
        last = bisect.bisect_right(ends, line.quote_start)
        opening = max([0, *ends[last - 1: last], *([previous.quote_end] if previous else [])])
        clause = seen[opening: line.quote_start]
        subject = self._subject(clause, opening, line.quote_start, here, recent)
        if subject:
            return subject
        # ... the speaker before when only that speaker's tag (and what it went on to say)
        # lies between (“Bells,” Ada said. “We follow it in.”), ...
        if previous is not None:
            between = seen[previous.end: line.quote_start]
            if not any(previous.end <= pos < line.quote_start for pos, _ in here) and (
                    _TAG_LEFTOVER.match(between)):
                return said
        # ... the person whose beat joins this quote to the next (“没关系。”阿梅摇摇头，“…”), ...
        beat = _BEAT.match(text, line.quote_end)
        if beat:
            first = next((p for pos, p in here if line.quote_end <= pos < beat.end()), None)
            if first:
                return first.name
        # ... or the one person of the sentence before, in this paragraph.
        before = bisect.bisect_left(ends, opening)
        sentence_start = ends[before - 1] if before else 0
        if previous is None or previous.end <= sentence_start:
            people = {p.name for at, p in here if sentence_start <= at < opening}
            if len(people) == 1:
                return people.pop()
        return None

    def _subject(self, clause: str, opening: int, at: int, here: list[tuple[int, Person]],
                 recent: list[list[tuple[int, Person]]]) -> str | None:
        """The person a clause is about: the first it names, or the one its opening pronoun
        means."""
        first = next((p for pos, p in here if opening <= pos < at), None)
        if first:
            return first.name
        pronoun = re.match(r"^\W*(?P<p>[Hh]e|[Ss]he|他|她)(?:\b|(?=[^A-Za-z]))", clause)
        if pronoun:
            return self._resolve(_PRONOUN_GENDER[pronoun.group("p")], at, here, recent)
        return None

    def _resolve(self, pronoun: str, at: int, here: list[tuple[int, Person]],
                 recent: list[list[tuple[int, Person]]]) -> str | None:
        """The person a he/she at `at` means: the most recent mention it fits, in this
        paragraph then the three before; else the only character of the cast it fits."""
        candidates = [p for pos, p in reversed(here) if pos < at]
        for earlier in recent:
            candidates += [p for _, p in reversed(earlier)]
        fitting = [p for p in candidates if p.gender in (None, pronoun)]
        if not fitting:
            known = [p for p in self.people if p.gender == pronoun]
            unknown = [p for p in self.people if p.gender is None]
            fitting = known if len(known) == 1 else unknown if not known and len(
                unknown) == 1 else []
        if not fitting:
            return None
        if fitting[0] not in self._bystanders:
            fitting[0].gender = pronoun
        return fitting[0].name

    def _join_self_named(self) -> None:
        """A role that says its name (“I'm Tilly.”) is that person: the role's forms join the
        name's, and its lines are the name's."""
        roles = {p.name: p for p in self.people if p.role}
        for line, speaker in self.lines:
            match = _SELF_NAMED.search(line)
            role = roles.get(speaker or "")
            if not match or role is None or role.given:
                continue
            named = match.group("who") or match.group("han")
            target = next((p for p in self.people if p is not role and p.is_called(named)), None)
            if target is None:
                continue
            target.forms += [f for f in role.forms if f not in target.forms]
            target.refresh()
            target.gender = target.gender or role.gender
            self.people.remove(role)
            del roles[role.name]
            self.lines = [(text, target.name if who == role.name else who)
                          for text, who in self.lines]

    # --- shots ---------------------------------------------------------------------------

    def shots(self, texts: list[str]) -> list[ShotPeople]:
        """Characters, dialogue and action of each shot's text, in story order."""
        queue = list(self.lines)
        result: list[ShotPeople] = []
        previous: list[str] = []
        for text in texts:
            lines = spoken(text)
            speakers = []
            for line in lines:
                # The story's lines come in the same order; a quote cut differently by the
                # shot's text (an unbalanced quote) has no known speaker.
                if queue and queue[0][0] == line.line:
                    speakers.append(queue.pop(0)[1])
                else:
                    speakers.append(None)
            seen = narration(text)
            at = {p.name: min(p.at(seen), default=len(seen)) for p in self.people
                  if p.at(seen) or p.name in speakers}
            present = sorted(at, key=lambda n: at[n])
            if not present:
                genders = ({"male"} if _HE.search(seen) else set()) | (
                    {"female"} if _SHE.search(seen) else set())
                carried = self._carried(previous, genders)
                present = [carried] if carried else []
            dialogue = [DialogueLine(speaker=s, line=line.line)
                        for line, s in zip(lines, speakers, strict=True)]
            result.append(ShotPeople(present, dialogue, _action(text, lines, speakers)))
            previous = present
        return result

    def _carried(self, candidates: list[str], genders: set[str]) -> str | None:
        """The one character of the shot before that the shot's pronouns can mean."""
        if len(genders) != 1:
            return None
        (pronoun,) = genders
        fitting = [n for n in candidates if self.person(n).gender in (None, pronoun)]
        if len(fitting) != 1:
            return None
        self.person(fitting[0]).gender = pronoun
        return fitting[0]


def _action(text: str, lines: list[Spoken], speakers: list[str | None]) -> str:
    """What we see: the text without its spoken lines and their tags. What a tag went on to
    say (“…,” she said quietly / , moving her bag) is not a sentence: it joins the sentence
    before it, or, with none, keeps its tag (“She said, moving her bag.”)."""
    kept: list[str] = []
    at = 0
    for line, speaker in zip(lines, speakers, strict=True):
        kept.append(text[at: line.start])
        at = line.end
        rest = text[at:]
        fragment = re.match(r"^\s*,?\s*(?=[a-z])", rest) if line.end > line.quote_end else None
        if not fragment:
            continue
        before = " ".join("".join(kept).split()).rstrip()
        if re.search(r"[A-Za-z][.!?]$", before):
            kept = [before[:-1] + ", "]
            at += fragment.end()
        else:
            tag = text[line.quote_end: line.end].strip(" ,")
            if line.who in _PRONOUN_GENDER and speaker:
                tag = tag.replace(line.who, speaker, 1)
            kept.append(" " + tag)
    kept.append(text[at:])
    action = " ".join("".join(kept).split()).strip(" ,，、;；:：")
    action = re.sub(r"\s+([,.!?;:])", r"\1", action)
    action = re.sub(r"([.。!！?？…])[\s.。,，]+(?=[.。,，\s]|$)", r"\1", action)
    action = re.sub(r"^[.。!！?？…]+\s*", "", action)
    return action[:1].upper() + action[1:]
