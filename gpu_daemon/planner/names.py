"""Who a story names, without a model: names, the roles that stand for people, and the words
that only look like names (places, boats, titles).

- English names: capitalised words that recur in the narration (quotes aside), at least once
  where a capital is not just a sentence start, titles (Mr, Old, Captain) set aside. A word the
  text uses as a place or a thing (after "in", "into", "reached", ...; "the Margaret", "the
  Glasgow sleeper"; "Chester Street") is not a name, unless a speech tag or a title says it
  is a person.
- Chinese names: the words before 说/道/问 and the other speech verbs, 老 + a surname (老陈),
  阿 + a character (阿梅), a surname + a kinship title (王奶奶), the name after a kinship
  word (孙女小雨) or after 叫 (我叫小杰). The words around a speech verb that are a manner
  (低声, 笑着, 抿着嘴) are not names.
- Across scripts: a one-word Latin name that is a Chinese surname's romanisation (Lin, Chen,
  Wong) is the same person as that surname written alone in the Chinese text (林).
- Roles: "the stranger", "an old man", 陌生人, 女孩: an unnamed person the story keeps
  coming back to. A role is the person a name introduces where the text says so ("Walter, an
  old man", "an old fisherman named Keong", 女孩说她叫阿芳).

Every name and role counts only if the story mentions it at least twice, all its forms
together.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from storyboard_contract.cjk import HAN, HAN_CHAR

EN_SPEECH_VERBS = (
    "said|asked|cried|shouted|called|yelled|screamed|whispered|murmured|replied|answered|"
    "added|begged|pleaded|gasped|says|asks|replies|answers|whispers|shouts|cries"
)
ZH_SPEECH_VERBS = "说|道|问|喊|叫|答|嚷|吼|叹"

QUOTED = re.compile(r"“([^”]*)”|「([^」]*)」|『([^』]*)』|\"([^\"]*)\"")

_CAPITALISED = re.compile(r"\b[A-Z][a-z]+\b")
TITLES = {
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
# A capitalised word right after these is, at that spot, not a person.
_PLACE_BEFORE = re.compile(
    r"\b(?:in|at|on|to|from|into|onto|of|across|near|over|toward|towards|through|past|around|"
    r"outside|inside|beyond|under|behind)\s+$",
    re.IGNORECASE,
)
# ...and after these, it is a place or a thing: people are not "in" or "reached", and are not
# "the Margaret" or "the Glasgow sleeper".
_PLACE_EVIDENCE = re.compile(
    r"(?:\b(?:in|into|inside|outside|near|across|through|throughout|beyond|within|past|"
    r"reached|reach|entered|visited|leaving|left for)"
    r"|\b(?:way|drove|flew|sailed|moved|travelled|traveled|train|road|ferry|bus|flight|ship)"
    r"\s+(?:to|from|at|for|toward|towards)"
    r"|\b(?:the|a|an))\s+$",
    re.IGNORECASE,
)
# One walks or comes to a place or to a person: a place here unless the story shows the word
# doing what people do (_PERSON_EVIDENCE).
_MOTION_TO = re.compile(
    r"\b(?:went|go|goes|going|gone|came|come|coming|back|returned|arrived|headed|walked|"
    r"ran|hurried|rushed|stepped|wandered|limped|crossed over)\s+(?:to|from|at|for|toward|"
    r"towards|up to|over to|back to)\s+$",
    re.IGNORECASE,
)
_PERSON_VERBS = (
    r"said|says|asked|asks|replied|answered|whispered|shouted|called|cried|laughed|smiled|"
    r"grinned|frowned|nodded|sighed|shrugged|winked|wept|sobbed|blinked|looked|glanced|stared|"
    r"watched|listened|waited|turned|stood|sat|knelt|took|gave|handed|held|hugged|kissed|"
    r"thought|knew|felt|saw|heard|wanted|opened|closed|pointed|reached|lifted|put|picked|"
    r"pushed|pulled|wiped|shook|raised|lowered|folded|touched|leaned|waved|rose|got"
)
_PERSON_EVIDENCE_AFTER = re.compile(
    rf"^(?:\s+(?:{_PERSON_VERBS})\b"
    r"|'s\s+(?:face|hand|hands|eyes|eye|voice|arm|arms|shoulder|shoulders|hair|mouth|lips|"
    r"smile|head|mother|father|wife|husband|son|daughter|sister|brother|coat|name)\b)"
)
_PERSON_EVIDENCE_BEFORE = re.compile(
    r"\b(?:said to|told|asked|thanked|hugged|kissed|married|helped|greeted|handed|gave|"
    r"promised|warned|smiled at|looked at|nodded to|waved to|beside|with)\s+$",
    re.IGNORECASE,
)
_PLACE_AFTER = re.compile(
    r"^\s+(?:Street|Road|Lane|Avenue|Square|Station|Bay|Harbour|Harbor|River|Hill|Park|"
    r"Bridge|Castle|Church|Hotel|Inn|Hall|Island|Mountain|Lake|Valley|Town|City|Central)\b"
)
_STARTS_SENTENCE = re.compile(r"(?:^|[.!?…。！？][”’\"')）」』]*)[\s“\"'(（「『]*$")
_AFTER_TITLE = re.compile(r"^\.?\s+[A-Z][a-z]")
_TITLE_BEFORE = re.compile(rf"\b(?:{'|'.join(sorted(TITLES))})\.?\s+$")

# Chinese.
ZH_MANNERS = (
    "轻声|低声|大声|小声|笑着|哭着|冷冷地|淡淡地|缓缓地|缓缓|忽然|突然|连忙|急忙|赶紧|喃喃地|喃喃|"
    "又|也|便|就|才|还|却|只"
)
# 道 alone or after 笑 is a speech verb only before punctuation or a quote (知道, 街道 are
# not); 喊道, 问道 and the like always are.
ZH_VERB = (rf"(?:(?:{ZH_MANNERS}))?"
           rf"(?:(?:{ZH_SPEECH_VERBS.replace('|道', '')})道?|笑?道(?=[：:，,。“「\"]))")
_ZH_BOUNDARY = r"(?:^|(?<=[，。！？；：、”」』…\s,.!?;:]))"
_ZH_BEFORE_SPEECH = re.compile(rf"{_ZH_BOUNDARY}(?P<who>[{HAN}]{{1,3}}?){ZH_VERB}")
SURNAMES: dict[str, tuple[str, ...]] = {
    # A common surname and how it is written in Latin letters (Mandarin, Cantonese).
    "陈": ("chen", "chan"), "王": ("wang", "wong"), "李": ("li", "lee"), "张": ("zhang", "cheung"),
    "刘": ("liu", "lau"), "赵": ("zhao", "chiu"), "黄": ("huang", "wong"), "周": ("zhou", "chow"),
    "吴": ("wu", "ng"), "徐": ("xu", "tsui"), "孙": ("sun",), "胡": ("hu", "wu"),
    "朱": ("zhu", "chu"), "高": ("gao", "ko"), "林": ("lin", "lam"), "何": ("ho",),
    "郭": ("guo", "kwok"), "马": ("ma",), "罗": ("luo", "law"), "梁": ("liang", "leung"),
    "宋": ("song", "sung"), "郑": ("zheng", "cheng"), "谢": ("xie", "tse"), "韩": ("han",),
    "唐": ("tang", "tong"), "冯": ("feng", "fung"), "于": ("yu",), "董": ("dong", "tung"),
    "萧": ("xiao", "siu"), "程": ("cheng",), "曹": ("cao", "tso"), "袁": ("yuan", "yuen"),
    "邓": ("deng", "tang"), "许": ("xu", "hui"), "傅": ("fu",), "沈": ("shen", "shum"),
    "曾": ("zeng", "tsang"), "彭": ("peng", "pang"), "吕": ("lu", "lui"), "苏": ("su", "so"),
    "卢": ("lu", "lo"), "蒋": ("jiang", "chiang"), "蔡": ("cai", "choi"), "贾": ("jia",),
    "丁": ("ding",), "魏": ("wei", "ngai"), "薛": ("xue",), "叶": ("ye", "yip"),
    "阎": ("yan",), "余": ("yu", "yee"), "潘": ("pan", "poon"), "杜": ("du", "to"),
    "戴": ("dai", "tai"), "夏": ("xia", "ha"), "钟": ("zhong", "chung"), "汪": ("wang",),
    "田": ("tian",), "任": ("ren", "yam"), "姜": ("jiang",), "范": ("fan",), "方": ("fang", "fong"),
    "石": ("shi", "shek"), "姚": ("yao", "yiu"), "谭": ("tan", "tam"), "廖": ("liao", "liu"),
    "邹": ("zou", "chau"), "熊": ("xiong", "hung"), "金": ("jin", "kam"), "陆": ("lu", "luk"),
    "郝": ("hao",), "孔": ("kong", "hung"), "白": ("bai", "pak"), "崔": ("cui", "tsui"),
    "康": ("kang", "hong"), "毛": ("mao", "mo"), "邱": ("qiu", "yau"), "秦": ("qin", "chun"),
    "江": ("jiang", "kong"), "史": ("shi",), "顾": ("gu", "koo"), "侯": ("hou", "hau"),
}
_SURNAME_CHARS = "".join(SURNAMES)
# 老 + a common surname: how Chinese stories name an older man or woman (老陈, 老王).
ZH_ELDER = re.compile(f"老[{_SURNAME_CHARS}]")
_ZH_KIN = ("孙女|孙子|女儿|儿子|妻子|丈夫|哥哥|姐姐|弟弟|妹妹|妈妈|爸爸|母亲|父亲|"
           "朋友|邻居|徒弟|师父")
_ZH_AFTER_KIN = re.compile(rf"(?:{_ZH_KIN})(?P<who>[{HAN}]{{2}})")
# 阿 + one character is a familiar name (阿梅, 阿强), but 阿姨, 阿婆 are kinship words.
_ZH_AH = re.compile(f"阿[{HAN}](?<![阿][姨婆公爸妈哥姐嫂伯叔爷奶们])")
# A surname and a kinship or courtesy title: 王奶奶, 李老师, 周先生.
ZH_COURTESY = "奶奶|爷爷|阿姨|大爷|大妈|大叔|大婶|婆婆|老师|先生|太太|小姐|师傅|大哥|大姐"
_ZH_SURNAME_TITLE = re.compile(f"[{_SURNAME_CHARS}](?:{ZH_COURTESY})")
_ZH_CALLED = re.compile(rf"(?:叫|名叫|叫做)(?P<who>[{HAN}]{{2,3}}?)(?=[，。,！？!?、”」』\s]|$)")
_ZH_NOT_NAMES = {
    "他", "她", "它", "我", "你", "您", "他们", "她们", "我们", "你们", "大家", "有人", "人们",
    "别人", "众人", "谁", "听", "据", "小", "又", "也", "就", "便", "才", "还", "再", "却", "只",
    "都", "可", "虽", "笑",
}
# What a manner or an action looks like, next to a speech verb: 抿着嘴, 低下头, 压低声音.
_ZH_NOT_NAME_CHARS = re.compile(f"[着了地得的头嘴声音一]|^(?:{ZH_MANNERS})$")
# The Chinese characters a lone surname forms words with (林子, 树林 is caught by what precedes).
_ZH_COMPOUND_AFTER = "子中间里木业荫场区"

# Roles: nouns that stand for a person, with what they say of them (age, gender).
_EN_ROLES: dict[str, tuple[str | None, str | None]] = {
    "stranger": (None, None), "man": (None, "male"), "woman": (None, "female"),
    "girl": ("young", "female"), "boy": ("young", "male"), "child": ("young", None),
    "lady": (None, "female"), "gentleman": (None, "male"), "fisherman": (None, "male"),
    "old man": ("elderly", "male"), "old woman": ("elderly", "female"),
    "young man": ("young", "male"), "young woman": ("young", "female"),
    "old fisherman": ("elderly", "male"), "old lady": ("elderly", "female"),
}
_ZH_ROLES: dict[str, tuple[str | None, str | None]] = {
    "陌生人": (None, None), "年轻人": ("young", None), "小伙子": ("young", "male"),
    "老人": ("elderly", None), "老头": ("elderly", "male"), "老太太": ("elderly", "female"),
    "老婆婆": ("elderly", "female"), "男孩": ("young", "male"), "女孩": ("young", "female"),
    "姑娘": ("young", "female"), "孩子": ("young", None), "渔夫": (None, "male"),
    "男人": (None, "male"), "女人": (None, "female"),
}
# The same role in the other language: one person where a story tells it in both.
ROLE_TWINS = {"陌生人": "stranger", "老人": "old man", "老头": "old man",
               "老太太": "old woman", "老婆婆": "old woman", "男孩": "boy", "女孩": "girl",
               "姑娘": "girl", "年轻人": "young man", "小伙子": "young man", "孩子": "child",
               "渔夫": "fisherman", "男人": "man", "女人": "woman"}
ROLE_HINTS = {**_EN_ROLES, **_ZH_ROLES}
_EN_ROLE = re.compile(
    r"\b(?:the|a|an)\s+(?:(?P<age>old|young)\s+|(?!old\b|young\b)[a-z]+\s+)?"
    rf"(?P<noun>{'|'.join(sorted({k.split()[-1] for k in _EN_ROLES}, key=len, reverse=True))})"
    r"\b",
    re.IGNORECASE,
)
_ZH_ROLE = re.compile("|".join(sorted(_ZH_ROLES, key=len, reverse=True)))


def is_han(name: str) -> bool:
    return bool(HAN_CHAR.match(name))


def narration(text: str) -> str:
    """`text` with its quotes taken out (blanked, so that positions still match)."""
    return QUOTED.sub(lambda m: " " * len(m.group()), text)


@dataclass
class Found:
    """A person the text names: the name it is cast under and its other forms."""

    name: str
    aliases: list[str] = field(default_factory=list)
    role: str | None = None  # a role's key ("old man", "陌生人"), for a role not named

    @property
    def forms(self) -> list[str]:
        return [self.name, *self.aliases]


def mention_pattern(form: str) -> re.Pattern[str]:
    """Where the text mentions a form of a person: a Latin name as a whole word, a role with its
    article ("the stranger", "an old man"), a Chinese name as written, a lone Chinese surname
    (林) only where it opens a clause and forms no word with what follows."""
    if form in ROLE_HINTS and not is_han(form):
        words = form.split()
        adjective = rf"{words[0]}\s+" if len(words) > 1 else r"(?:(?!old\b|young\b)[a-z]+\s+)?"
        # "since she was a girl" says what someone was, not who is there.
        return re.compile(rf"(?<!\bwas )(?<!\bis )(?<!\bwere )(?<!\bas )\b(?:the|a|an)\s+"
                          rf"{adjective}{words[-1]}\b", re.IGNORECASE)
    if is_han(form):
        if len(form) == 1:
            return re.compile(rf"(?<![{HAN}]){form}(?![{_ZH_COMPOUND_AFTER}])")
        return re.compile(re.escape(form))
    return re.compile(rf"\b{re.escape(form)}\b")


def _en_role(match: re.Match[str]) -> str:
    noun = match.group("noun").lower()
    age = (match.group("age") or "").lower()
    return f"{age} {noun}" if age and f"{age} {noun}" in _EN_ROLES else noun


def _english_names(story: str, sentences: list[str], speakers: set[str]) -> Counter[str]:
    """Capitalised words that may be names, with how often the narration mentions them."""
    seen: Counter[str] = Counter()
    named: set[str] = set()
    free: set[str] = set()  # seen at least once not right after a preposition
    titled: set[str] = set()
    for sentence in sentences:
        text = narration(sentence)
        for match in _CAPITALISED.finditer(text):
            word, before = match.group(), text[: match.start()]
            if word in _NOT_NAMES:
                continue
            if word in TITLES and _AFTER_TITLE.match(text[match.end():]):
                continue
            seen[word] += 1
            if _TITLE_BEFORE.search(before):
                titled.add(word)
            if not _PLACE_BEFORE.search(before):
                free.add(word)
                if not _STARTS_SENTENCE.search(before):
                    named.add(word)
    lower = set(re.findall(r"\b[a-z]+\b", story))
    named.update(w for w in free if w.lower() not in lower)
    # A place or a thing, wherever the story (quotes included) says so, unless a title or a
    # speech tag makes it a person.
    things, went_to, acting = set(), set(), set()
    for m in _CAPITALISED.finditer(story):
        before, after = story[max(0, m.start() - 30): m.start()], story[m.end(): m.end() + 40]
        if _PLACE_EVIDENCE.search(before) or _PLACE_AFTER.match(after):
            things.add(m.group())
        elif _MOTION_TO.search(before):
            went_to.add(m.group())
        if _PERSON_EVIDENCE_AFTER.match(after) or _PERSON_EVIDENCE_BEFORE.search(before):
            acting.add(m.group())
    things |= went_to - acting
    people = titled | {s.split()[-1] for s in speakers if s[:1].isupper()}
    return Counter({w: n for w, n in seen.items()
                    if (w in named or w in people) and (w not in things or w in people)})


def _chinese_names(story: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for pattern in (_ZH_BEFORE_SPEECH, _ZH_AFTER_KIN, _ZH_CALLED):
        found += [(m.start("who"), m.group("who")) for m in pattern.finditer(story)]
    for pattern in (ZH_ELDER, _ZH_AH, _ZH_SURNAME_TITLE):
        found += [(m.start(), m.group()) for m in pattern.finditer(story)]
    # 老周 or 王奶奶 opening a clause names a person, even once.
    certain = {m.group() for pattern in (ZH_ELDER, _ZH_SURNAME_TITLE)
               for m in re.finditer(f"{_ZH_BOUNDARY}(?:{pattern.pattern})", story)}
    names: list[str] = []
    for _, name in sorted(found):
        if name in _ZH_NOT_NAMES or _ZH_NOT_NAME_CHARS.search(name) or name in _ZH_ROLES:
            continue
        if name not in names and (story.count(name) >= 2 or name in certain):
            names.append(name)
    # 老陈 and 陈 in one story: one person, 老陈 wins (the longer form names them).
    return [n for n in names if not any(n != m and n in m for m in names)]


def _count(story: str, forms: list[str]) -> int:
    text = narration(story)
    return sum(len(mention_pattern(f).findall(text if not is_han(f) else story)) for f in forms)


def _lone_surnames(story: str, name: str) -> list[str]:
    """The Chinese surnames a one-word Latin name romanises, where the story writes them
    alone (Lin: 林看清封面)."""
    key = name.lower()
    return [han for han, latin in SURNAMES.items()
            if key in latin and mention_pattern(han).search(story)]


def _role_links(story: str, names: list[Found]) -> dict[str, str]:
    """Role -> the name the text gives it: "Walter, an old man", "an old fisherman named
    Keong", "Walter was an old man", 女孩说她叫阿芳, 一个叫阿梅的姑娘."""
    links: dict[str, str] = {}
    for found in names:
        name = re.escape(found.name)
        if is_han(found.name):
            for role in _ZH_ROLES:
                if re.search(rf"{role}说[他她]叫{name}|叫{name}的{role}", story):
                    links.setdefault(role, found.name)
            continue
        for match in _EN_ROLE.finditer(story):
            before = story[max(0, match.start() - 60): match.start()]
            after = story[match.end(): match.end() + 60]
            if (re.search(rf"\b{name}(?:,| was| is)\s+$", before)
                    or re.match(rf"\s+(?:named|called)\s+(?:[A-Z][a-z]+\s+)?{name}\b", after)):
                links.setdefault(_en_role(match), found.name)
    return links


def find_people(story: str, sentences: list[str],
                speakers: set[str]) -> tuple[list[Found], list[Found]]:
    """The story's people in order of first mention: names with their other forms, and the
    roles no name was given to; and the roles mentioned too seldom to be cast ("a man in a
    yellow coat"), who may still be who a pronoun means. `speakers`: the words speech tags
    name ("Mara asked")."""
    english = _english_names(story, sentences, speakers)
    found: list[Found] = []
    for name, count in english.items():
        lone = _lone_surnames(story, name)
        if count + _count(story, lone) >= 2:
            found.append(Found(name, lone))
    han_forms = {a for f in found for a in f.aliases}
    found += [Found(n) for n in _chinese_names(story) if n not in han_forms]

    links = _role_links(story, found)
    by_name = {f.name: f for f in found}
    roles: dict[str, Found] = {}  # role key (English where the story has both) -> person
    text = narration(story)
    for match in [*_EN_ROLE.finditer(text), *_ZH_ROLE.finditer(story)]:
        role = _en_role(match) if match.re is _EN_ROLE else match.group()
        if role in links:
            person = by_name[links[role]]
            if role not in person.aliases:
                person.aliases.append(role)
            continue
        key = ROLE_TWINS.get(role, role)
        person = roles.setdefault(key, Found(role, role=key))
        if role not in person.forms:
            person.aliases.append(role)
    seldom: list[Found] = []
    for person in roles.values():
        # "the stranger" is the name a role is cast under; the Chinese role stays as written.
        shown = person.name if is_han(person.name) else f"the {person.name}"
        role = Found(shown, [f for f in person.forms if f != shown], person.role)
        spoken_of = any(re.search(rf"\b(?:the\s+)?{re.escape(f)}$", s, re.IGNORECASE)
                        for s in speakers for f in person.forms)
        (found if _count(story, person.forms) >= 2 or spoken_of else seldom).append(role)
    return sorted(found, key=lambda f: min(
        (m.start() for form in f.forms for m in mention_pattern(form).finditer(story)),
        default=len(story))), seldom
