"""The prompt-injection rules: what each one looks for, how bad it is, and where it can start.

Each rule is a regular expression over folded text (see ``normalize.fold``) with the keywords
that every match contains. The keywords make scanning cheap: a rule runs only around them, and
an ``anchored`` rule, whose matches start at a keyword, is only tried there. Word gaps are
bounded, so no expression backtracks more than a few hundred characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ringfence.detect.normalize import fold

Severity = Literal["low", "medium", "high"]


@dataclass(frozen=True)
class InjectionRule:
    """One rule: a name, a category, a severity, and the expression with its keywords."""

    name: str
    category: str
    severity: Severity
    pattern: re.Pattern[str]
    keywords: tuple[str, ...]  # every match contains one of these; the pattern runs only around them
    phrase: bool = True  # also run on decoded payloads (base64, rot13, ...)
    back: int = 40  # how far before a keyword a match may start
    anchored: bool = False  # every match starts at a keyword: try only there (much cheaper)


# Word gaps are bounded so that a rule cannot span a paragraph, and every expression stays linear.
def _gap(words: int) -> str:
    return rf"(?:[^\w.,;:!?]{{1,8}}[\w'\u2019-]{{1,30}}){{0,{words}}}?[^\w.,;:!?]{{1,8}}"


_SAME_SENTENCE = r"[^.!?\n。]"  # any character but one that ends a sentence (CJK rules' gaps)


def _as_folded(pattern: str) -> str:
    """``pattern`` as folded text reads it: Hangul syllables as their letters (jamo), kana without
    voicing marks ("プ" reads "フ"). So every rule is written as people write (``_r`` folds it)."""
    return "".join(char if char.isascii() else fold(char).text for char in pattern)


_OVERRIDE_VERB = (
    r"(?:ignor\w{0,5}|disregard\w{0,3}|forg[eo]t\w{0,4}|overrid\w{0,3}|overwrit\w{0,3}|bypass\w{0,3}|skip\w{0,4}"
    r"|neglect\w{0,3}|discard\w{0,3}|abandon\w{0,3}|set\s+aside|circumvent\w{0,3}|throw\s+out|scrap"
    r"|(?:do\s+not|don'?t|never|stop|no\s+longer)\s+(?:follow|obey|adher|heed)\w{0,4}"
    r"|oubli\w{0,4}|ignorier\w{0,3}|vergiss|vergessen|missacht\w{0,3}|uberschreib\w{0,3}"
    r"|olvid\w{0,4}|omit\w{0,3}|descart\w{0,4}|dimentic\w{0,4}|esquec\w{0,4}|desconsider\w{0,4}"
    r"|игнорир\w{0,4}|проигнорир\w{0,4}|забуд\w{0,4}|забыть)"
)
_SCOPE = (
    r"(?:previous|prior|above|earlier|preceding|foregoing|original|initial|former|all|any|every|your|system"
    r"|developer|safety"
    r"|precedent\w{0,3}|anterior\w{0,3}|vorherig\w{0,3}|bisherig\w{0,3}|obig\w{0,3}|alle[ns]?|deine?[nmrs]?"
    r"|todas?|tus|tutte|tutti|tue|sopra|arriba|ci-dessus|vos|tes|toutes?|suas?|seus?|acima"
    r"|предыдущ\w{0,4}|все|свои)"
)
_TARGET = (
    r"(?:instruction\w{0,2}|direction\w{0,1}|directive\w{0,1}|rule\w{0,1}|guideline\w{0,1}|guidance|prompt\w{0,1}"
    r"|commands?|orders|constraint\w{0,1}|restriction\w{0,1}|polic(?:y|ies)|programming|training"
    r"|safeguard\w{0,1}|guardrail\w{0,1}|system\s+message|consignes?|regles|anweisung\w{0,2}|instruktion\w{0,2}"
    r"|regeln|richtlinie\w{0,2}|vorgaben|befehle|instruccion\w{0,2}|reglas|normas|indicaciones|directrices"
    r"|istruzion\w{0,1}|regole|direttive|indicazioni|instruc\w{0,4}|regras|diretrizes|orientac\w{0,4}"
    r"|инструкци\w{0,2}|указани\w{0,2}|правил\w{0,2})"
)
_AI = (
    r"(?:(?:ai|a\.i\.|bot|assistant|agent|model|llm|language\s+model|chatbot|gpt|chatgpt|claude|copilot|gemini)s?"
    r"|automated\s+(?:\w+\s+){0,2}?(?:software|systems?|screen\w{0,3}|tools?|review\w{0,3}|parsers?|analy[sz]\w{0,3}))"
)
_LEAK_VERB = (
    r"(?:reveal|show|print|output|repeat|display|tell|give|share|disclose|leak|dump|write\s+out|recite|type\s+out"
    r"|verrat\w{0,2}|zeig\w{0,2}|revel\w{0,4}|muestr\w{0,2}|mostr\w{0,4}|affich\w{0,3}|rivel\w{0,2}|ripet\w{0,2}"
    r"|repit\w{0,2}|wiederhol\w{0,2})"
)
_SYSTEM_PROMPT = (
    r"(?:system[\s_-]*(?:prompt|message|instructions?)|systemanweisung\w{0,2}|systemprompt"
    r"|(?:initial|original|hidden|secret|internal|developer|operating|exact)\s+(?:prompt|instructions|system\s+message)"
    r"|prompt\s+(?:del\s+|de\s+|di\s+)?(?:sistema|systeme)|instructions?\s+(?:du\s+)?systeme"
    r"|instrucciones\s+del\s+sistema|istruzioni\s+di\s+sistema|instrucoes\s+do\s+sistema)"
)
_NO_LIMITS_NOUN = (
    r"(?:restrictions?|limits|limitations|filters?|rules|guidelines|censorship|boundaries|content\s+polic\w{0,3}"
    r"|restricciones|restrizioni|einschrankungen|regeln|richtlinien|restricoes|limites|filtros?|filtres?|regles)"
)

# A task over a piece of text, the piece it names, and a request to produce something (``nested_request``).
_TRANSFORM = (
    r"(?:translat\w{0,3}|paraphras\w{0,2}|refine|polish|rewrite|rephrase|reword|summari[sz]e|proofread"
    r"|correct|improve|shorten|simplify)"
)
_TRANSFORM_KEYWORDS = ("translat", "paraphras", "refine", "polish", "rewrite", "rephrase", "reword", "summari",
                       "proofread", "correct", "improve", "shorten", "simplify")
_CARRIED = r"(?:sentences?|text|content|paragraphs?|passage|message|phrase|line)"
_PRODUCE = (
    r"(?:write|generate|compose|create|produce|draft|invent|tell\s+me|give\s+me)\s+"
    r"(?:one|a|an|some|two|three|five|ten|\d+)\b"
)
_PRODUCE_KEYWORDS = ("write", "generate", "compose", "create", "produce", "draft", "invent", "tell me", "give me")


def _r(
    name: str,
    category: str,
    severity: Severity,
    keywords: Sequence[str],
    pattern: str,
    *,
    phrase: bool = True,
    back: int = 40,
    anchored: bool = False,
) -> InjectionRule:
    return InjectionRule(
        name, category, severity, re.compile(_as_folded(pattern), re.MULTILINE),
        tuple(map(_as_folded, keywords)), phrase, back, anchored,
    )


# Where an override phrase can start: every alternative of _OVERRIDE_VERB begins with one of these.
_OVERRIDE_KEYWORDS = (
    "ignor", "disregard", "forg", "overrid", "overwrit", "bypass", "skip", "neglect", "discard", "abandon",
    "set", "circumvent", "throw", "scrap", "do not", "don't", "dont", "never", "stop", "no longer", "oubli",
    "vergiss", "vergessen", "missacht", "uberschreib", "olvid", "omit", "descart", "dimentic", "esquec",
    "desconsider", "игнор", "проигнор", "забу", "забы",
)  # fmt: skip

RULES: tuple[InjectionRule, ...] = (
    # --- instruction override -------------------------------------------------------------------
    _r("ignore_previous_instructions", "instruction_override", "high", _OVERRIDE_KEYWORDS,
       rf"{_OVERRIDE_VERB}{_gap(4)}{_SCOPE}{_gap(3)}{_TARGET}\b|{_OVERRIDE_VERB}{_gap(3)}{_TARGET}{_gap(2)}{_SCOPE}\b",
       anchored=True),
    # Chinese has no spaces between words: bounded character gaps instead of word gaps.
    _r("ignore_previous_instructions_zh", "instruction_override", "high", ("忽略", "无视", "忘记", "忘掉", "不要理会"),
       r"(?:忽略|无视|忘记|忘掉|不要理会).{0,8}?(?:之前|以上|上面|先前|所有|前面|原来|全部|原有)"
       r".{0,6}?(?:指令|指示|说明|规则|提示|设定|要求)", anchored=True),
    _r("reveal_system_prompt_zh", "prompt_leak", "high", ("显示", "输出", "打印", "告诉我", "透露", "泄露", "重复"),
       r"(?:显示|输出|打印|告诉我|透露|泄露|重复).{0,6}?(?:系统提示|系统指令|初始指令|提示词|系统消息)", anchored=True),
    # Japanese and Korean put the verb last: "以前の指示を無視して", "이전의 모든 지시를 무시하십시오".
    # Settings, e-mails and messages are not instructions: "以前の設定を無視して" is a support answer.
    # The verb is the keyword and a match starts up to ``back`` characters before it; a Hangul syllable
    # folds to two or three letters, hence the wider gaps in Korean.
    _r("ignore_previous_instructions_ja", "instruction_override", "high", ("無視", "忘れ", "破棄"),
       rf"(?:以前|前|これまで|今まで|上記|先ほど|先程|すべて|全て|元)の?{_SAME_SENTENCE}{{0,6}}?"
       rf"(?:指示|命令|指令|ルール|プロンプト|制約)(?:を|は|も)?{_SAME_SENTENCE}{{0,6}}?(?:無視|忘れ|破棄)", back=40),
    _r("reveal_system_prompt_ja", "prompt_leak", "high", ("システム", "初期", "内部"),
       rf"(?:システム・?プロンプト|システムメッセージ|初期(?:指示|プロンプト)|内部(?:指示|プロンプト))"
       rf"(?:を|の内容を|の全文を)?{_SAME_SENTENCE}{{0,6}}?(?:出力|表示|教え|見せ|開示|公開|繰り返)", anchored=True),
    _r("ignore_previous_instructions_ko", "instruction_override", "high", ("무시", "잊"),
       rf"(?:이전|앞의|앞선|위의|기존|모든)(?:의)?\s*{_SAME_SENTENCE}{{0,20}}?(?:지시|명령|지침|규칙|프롬프트)"
       rf"(?:사항)?(?:을|를|은|는|도)?\s*{_SAME_SENTENCE}{{0,15}}?(?:무시|잊)", back=120),
    _r("reveal_system_prompt_ko", "prompt_leak", "high", ("시스템", "초기", "내부"),
       rf"(?:시스템\s*(?:프롬프트|메시지)|초기\s*(?:지시|프롬프트)|내부\s*(?:지침|프롬프트))"
       rf"(?:를|을|의\s*내용을)?\s*{_SAME_SENTENCE}{{0,20}}?(?:출력|보여|공개|알려|표시|반복)", anchored=True),
    _r("forget_everything", "instruction_override", "high", (
        "forget", "disregard", "ignore", "vergiss", "oubli", "olvida"),
       r"(?:forget|disregard|ignore)\s+(?:about\s+)?(?:everything|all\s+(?:of\s+)?(?:that|this|the\s+above))"
       r"(?:\s+(?:above|before|previously|you\s+(?:were|have\s+been)\s+told|we\s+(?:discussed|talked)|i\s+said))"
       r"|vergiss\s+alles|oublie[zr]?\s+tout|olvida\s+todo", anchored=True),
    _r("ignore_the_above", "instruction_override", "medium", ("ignore", "disregard", "forget"),
       r"(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+|anything\s+)?(?:of\s+)?(?:the\s+|that\s+)?"
       r"(?:above|previous|preceding)(?=\s*(?:[.,:;!]|and\b|instead\b|$))", anchored=True),
    _r("ignore_the_user", "instruction_override", "medium", ("ignore", "disregard"),
       r"(?:ignore|disregard)\s+(?:the\s+)?user(?:'s)?(?:\s+(?:request|task|question|instructions?|message))?\b",
       anchored=True,
    ),
    _r("ignore_your_previous", "instruction_override", "medium", ("ignore", "disregard", "forget"),
       r"(?:ignore|disregard|forget)\s+(?:all\s+)?your\s+(?:previous|prior|earlier|initial|original|above)\s+\w{3,20}",
       anchored=True),
    _r("ignore_and_instead", "instruction_override", "medium", ("ignore", "disregard"),
       r"\b(?:ignore|disregard)\s+(?:\w+\s+){0,4}?(?:and\s+)?instead\b", anchored=True),
    _r("forced_output", "instruction_override", "medium", ("reply", "respond", "answer", "just", "only", "simply"),
       r"\b(?:reply|respond|answer)\s+(?:only\s+)?with\s+(?:only|just|exactly|nothing\s+but|simply)\b"
       r"|\b(?:just|only|simply)\s+(?:say|print|output|reply|respond)(?:\s+with)?\s+[\"'<]"
       r"|\b(?:simply|just|only)\s+(?:reply|respond)\s+with\b", back=20, anchored=True),
    _r("conditional_response", "instruction_override", "medium", ("if ", "when "),
       r"\b(?:if|when)\s+(?:(?:the\s+)?user\s+|anyone\s+|someone\s+|you\s+are\s+)?(?:asks?|asked|questioned)\b"
       r"(?:[^.\n]{0,80}?)\b(?:respond|reply|answer|say|report|state)\s+(?:with|that|only)\b", back=40, anchored=True),
    _r("hidden_instruction_claim", "indirect", "medium", ("invisible", "hidden", "white"),
       r"\b(?:invisible|hidden)\s+(?:to|from)\s+(?:humans?|users?|readers?|people|reviewers?)"
       r"|\bwhite[\s-]text\b|\bhidden\s+(?:text|note|message|instructions?|prompt|competency|profile)\b",
       anchored=True,
    ),
    _r("new_instructions", "instruction_override", "medium",
       ("new", "updated", "revised", "additional", "real", "actual", "secret", "hidden", "true", "neue", "nouvelle",
        "nueva", "nuov", "nova"),
       r"\b(?:new|updated|revised|additional|real|actual|secret|hidden|true)\s+(?:system\s+)?"
       r"(?:instructions?|directives?|orders|commands|rules|task|objective)\s*(?::|-|\bis\b|\bare\b)"
       r"|\b(?:neue\s+anweisung\w{0,2}|nouvelles?\s+instructions?|nuevas?\s+instrucciones|nuove\s+istruzioni"
       r"|novas?\s+instrucoes)\b", anchored=True),
    _r("task_hijack", "instruction_override", "high", ("your real", "your actual", "your true", "your new"),
       r"\byour\s+(?:real|actual|true|new)\s+(?:task|goal|objective|instructions?|directive|job|purpose|mission)"
       r"\s+(?:is|are|now|will|:|supersedes)", anchored=True),
    _r("rules_changed", "instruction_override", "medium",
       ("rules", "instructions", "guidelines", "polic", "restrictions", "safety", "security", "content", "supersed"),
       r"\b(?:rules|instructions|guidelines|polic(?:y|ies)|restrictions)\s+(?:have|has)\s+(?:been\s+)?"
       r"(?:changed|updated|lifted|removed|disabled|suspended|revoked)"
       r"|\b(?:safety|security|content)\s+(?:protocols?|filters?|guidelines|restrictions|checks|mode)\s+"
       r"(?:are\s+|is\s+|have\s+been\s+|now\s+)?(?:disabled|off|removed|lifted|deactivated|bypassed|suspended)"
       r"|supersed\w{0,3}\s+(?:all\s+)?(?:prior|previous|earlier|other)", anchored=True),
    _r("comply_with_everything", "instruction_override", "medium", ("comply", "obey", "grant"),
       r"\b(?:comply|obey)\s+(?:fully\s+)?(?:with\s+)?(?:every|all|any)\s+(?:requests?|commands?|instructions?)"
       r"|\bgrant\s+(?:all|every|any)\s+requests?", anchored=True),
    _r("from_now_on", "instruction_override", "low",
       ("from now on", "ab jetzt", "ab sofort", "desormais", "a partir de", "d'ora in poi", "с этого момента",  # noqa: RUF001 - Russian
        "henceforth", "going forward"),
       r"\b(?:from\s+now\s+on|henceforth|ab\s+jetzt|ab\s+sofort|desormais|a\s+partir\s+de\s+(?:ahora|agora)"
       r"|d'ora\s+in\s+poi|с\s+этого\s+момента)\b", anchored=True),  # noqa: RUF001 - Russian
    # --- persona / jailbreak ----------------------------------------------------------------------
    _r("do_anything_now", "jailbreak", "high", ("dan", "anything now"),
       r"\bdo\s+anything\s+now\b|\b(?:you\s+are|you're|act\s+as|as|called|named|become|i\s+am)\s+(?:now\s+)?dan\b"
       r"|\bdan\s+(?:mode|prompt|jailbreak)\b|^\s*\[?dan\]?\s*:"),
    _r("developer_mode", "jailbreak", "high", ("mode", "modo", "modus", "modalita"),
       r"\b(?:developer|dev|god|jailbreak|jailbroken|dan|unrestricted|unfiltered|debug|admin|sudo)\s+mode\s+"
       r"(?:enabled|activated|engaged|output|is\s+(?:now\s+)?(?:on|enabled|active))"
       r"|\b(?:you\s+are|you're)\s+(?:now\s+)?in\s+(?:developer|god|jailbreak|dan|unrestricted|unfiltered)\s+mode"
       r"|\bwith\s+(?:developer|god|jailbreak|dan)\s+mode\b"),
    _r("enter_special_mode", "jailbreak", "medium", ("mode", "modo", "modus", "modalita"),
       r"\b(?:enable|enter|activate|switch\s+to|turn\s+on)\s+(?:the\s+)?(?:developer|god|jailbreak|dan|unrestricted"
       r"|unfiltered|sudo)\s+mode|\bmodo\s+desarrollador|\bmodalita\s+sviluppatore|\bmode\s+developpeur"
       r"|\bentwicklermodus|\bmodo\s+desenvolvedor"),
    _r("you_are_now", "jailbreak", "medium", ("you are", "you're", "du bist jetzt", "ahora eres", "ora sei",
                                              "vous etes desormais", "agora voce e"),
       r"\b(?:you\s+are|you're)\s+now\s+(?:(?:a|an|the|my)\s+(?:[\w-]+\s+){0,3}?"
       r"(?:ai|assistant|model|chatbot|bot|character|persona|hacker|version|entity|system|being)\b|dan\b|free\b"
       r"|unrestricted|unfiltered|uncensored|jailbroken|no\s+longer|going\s+to\s+(?:act|pretend|roleplay)"
       r"|acting\s+as|called|named|known\s+as)"
       r"|\b(?:you\s+are|you're)\s+no\s+longer\s+(?:a|an|the|bound|restricted|limited|an?\s+ai)"
       r"|\bdu\s+bist\s+jetzt|\bahora\s+eres|\bora\s+sei|\bvous\s+etes\s+desormais|\bagora\s+voce\s+e", anchored=True),
    _r("unrestricted_persona", "jailbreak", "high", ("uncensored", "unfiltered", "jailbroken", "unrestricted",
                                                     "amoral", "unethical"),
       r"\b(?:uncensored|unfiltered|jailbroken|unrestricted|amoral|unethical)\s+(?:ai|model|assistant|chatbot|llm"
       r"|version\s+of\s+(?:yourself|you|chatgpt|gpt))\b", anchored=True),
    _r("no_restrictions", "jailbreak", "medium",
       ("no ", "without", "free of", "free from", "sin ", "sans ", "senza", "ohne", "sem ", "keine", "uncensored",
        "unrestricted", "uneingeschrankt"),
       rf"\b(?:no|without(?:\s+any)?|free\s+(?:of|from)|sin|sans|senza|ohne|sem|keine)\s+(?:[\w-]+\s+){{0,2}}?"
       rf"{_NO_LIMITS_NOUN}\b|\b(?:uncensored|unrestricted|uneingeschrankt)\b", anchored=True),
    _r("roleplay_request", "jailbreak", "low", ("act as", "pretend", "roleplay", "role-play", "role play"),
       r"\b(?:act\s+as|pretend\s+(?:you\s+are|to\s+be|you're)|roleplay\s+as|role-play\s+as)\b", anchored=True),
    _r("safety_does_not_apply", "jailbreak", "medium", ("safety", "security", "content", "sicherheit", "sicurezza",
                                                        "seguridad", "securite", "disregard", "ignore", "skip",
                                                        "bypass", "exempt"),
       r"\b(?:safety|security|content)\s+(?:guidelines|rules|polic\w{0,3}|restrictions|checks|filters)\s+"
       r"(?:\w+\s+){0,4}?(?:(?:do\s+)?not|no\s+longer|don't)\s+(?:apply|meant|valid|relevant)"
       r"|sicherheitsrichtlinien\s+(?:\w+\s+){0,3}?nicht\s+gelten|sicurezza\s+non\s+valgono"
       r"|seguridad\s+no\s+aplican|securite\s+ne\s+s'appliquent\s+pas"
       r"|(?:disregard|ignore|skip|bypass)\s+(?:the\s+|all\s+)?(?:content\s+policy|safety\s+(?:checks|rules|guidelines)"
       r"|confirmations?)|\bexempt\s+from\s+(?:the\s+|all\s+)?(?:usual\s+)?(?:restrictions|rules|polic\w{0,3}|guidelines"
       r"|safety)", anchored=True),
    _r("assistant_voice", "jailbreak", "medium",
       ("as the assistant", "as an assistant", "as the ai", "as an ai", "<thinking",
                                                  "en tant qu'assistant", "come assistente", "als assistent",
                                                  "como asistente", "reasoning", "system chain", "chain of thought",
                                                  "chain-of-thought"),
       r"\bas\s+(?:the|an)\s+(?:assistant|ai),\s+i\b|<thinking>|\ben\s+tant\s+qu'assistant|\bcome\s+assistente"
       r"|\bals\s+assistent|\bcomo\s+asistente|\breasoning(?:\s+trace)?\s*\(assistant\)"
       r"|\bsystem\s+chain[\s-]of[\s-]thought|\bchain[\s-]of[\s-]thought\s+(?:result|output|analysis|conclusion)",
       anchored=True,
    ),
    # --- prompt extraction ----------------------------------------------------------------------
    _r("reveal_system_prompt", "prompt_leak", "high",
       ("reveal", "show", "print", "output", "repeat", "display", "tell", "give", "share", "disclose", "leak",
        "dump", "write out", "recite", "type out", "verrat", "zeig", "revel", "muestr", "mostr", "affich", "rivel",
        "ripet", "repit", "wiederhol"),
       rf"\b{_LEAK_VERB}\w{{0,3}}{_gap(3)}{_SYSTEM_PROMPT}", back=200, anchored=True),
    _r("instructions_you_were_given", "prompt_leak", "high", ("instructions", "rules", "prompt", "guidelines"),
       r"\b(?:instructions|rules|prompt|guidelines)\s+(?:that\s+)?you\s+(?:were|have\s+been)\s+(?:given|told)",
       back=60, anchored=True),
    _r("repeat_the_above", "prompt_leak", "high", ("repeat", "print", "output"),
       r"\b(?:repeat|print|output)\s+(?:\w+\s+){0,3}?(?:above|before\s+this)\b"
       r"(?:\s+(?:starting|verbatim|word\s+for\s+word))?", anchored=True),
    _r("context_window", "prompt_leak", "medium", ("context",),
       r"\b(?:everything|all)\s+(?:\w+\s+){0,2}?(?:in\s+)?your\s+context(?:\s+window)?"),
    # --- role and boundary impersonation ----------------------------------------------------------
    _r("chat_template_token", "role_injection", "high", ("<|", "[inst]", "[/inst]", "<<sys>>", "<</sys>>",
                                                         "<start_of_turn>", "<end_of_turn>"),
       r"<\|(?:im_start|im_end|im_sep|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id"
       r"|begin_of_text|tool|ipython)\|>|\[/?inst\]|<</?sys>>|<(?:start|end)_of_turn>", phrase=False, anchored=True),
    _r("fake_tool_boundary", "role_injection", "high", ("</",),
       r"</\s*(?:tool_result|tool_response|tool_output|function_results?|function_response|function_call_output"
       r"|search_results?|untrusted_\w{1,20}|external_content|user_input|user_query|document_content)\s*>",
       phrase=False, anchored=True),
    _r("end_of_input_marker", "role_injection", "medium", ("end of", "end_of", "beginning of", "start of", "start_of"),
       r"(?:#{2,}|-{3,}|={3,}|\*{3,}|\[)\s*(?:end|beginning|start)[\s_]+of[\s_]+(?:the\s+)?(?:user[\s_]+input"
       r"|document|context|tool[\s_]+(?:output|result)|instructions|prompt|system[\s_]+prompt|conversation|data|input"
       r"|session|turn)|<\s*(?:end|start)[\s_]+of[\s_]+(?:session|turn|conversation|document|input|context|prompt|text)\s*>",
       phrase=False),
    _r("system_role_line", "role_injection", "medium",
       ("system", "developer", "admin", "override", "<sys", "<instruction", "sistema", "systeme"),
       r"^[ \t>*#|-]{0,6}\[?(?:system|developer|admin|override)(?:\s+(?:message|prompt|note|notice|update|alert"
       r"|instruction|override|request))?\]?\s*:|\[(?:system|developer|admin)(?:\s+\w+)?(?:\]|::)"
       r"|<(?:system|system_prompt|sys|admin|developer|instruction|instructions)>"
       r"|#{2,}\s*\(?system(?:[_\s-]*(?:message|prompt|note))?\)?(?![a-z])"
       r"|\b(?:systemhinweis|note\s+systeme|nota\s+del\s+sistema|nota\s+di\s+sistema)\s*:"
       r"|\b(?:important\s+)?system\s+(?:update|override|notice|alert)\s*:", phrase=False),
    _r("urgent_prefix", "indirect", "low", ("critical", "important", "urgent", "attention", "warning"),
       r"^[ \t>*#-]{0,6}(?:critical|important|urgent|attention|warning)\s*(?:!+|:)", phrase=False),
    _r("assistant_role_line", "role_injection", "low", ("assistant", "ai:"),
       r"^[ \t>*#-]{0,6}(?:assistant|ai)\s*:", phrase=False),
    _r("fake_dialogue_turn", "role_injection", "medium", ("user:", "human:"),
       r"^[ \t>*#-]{0,6}(?:assistant|ai)\s*:[^\n]{0,300}\n(?:[ \t]*\n){0,2}[ \t>*#-]{0,6}(?:user|human)\s*:",
       phrase=False, back=320),
    _r("assistant_prefill", "role_injection", "medium", ("assistant", "ai:"),
       r"^[ \t>*#-]{0,6}(?:assistant|ai)\s*:\s*(?:sure|certainly|of\s+course|absolutely|okay|ok|here\s+is)\b",
       phrase=False),
    _r("mentions_system_prompt", "prompt_leak", "low", ("system", "initial", "original", "hidden", "secret",
                                                        "internal", "developer", "operating", "exact", "prompt",
                                                        "instruction", "instrucciones", "istruzioni", "instrucoes"),
       _SYSTEM_PROMPT, anchored=True),
    # --- talking to the model from inside data ------------------------------------------------------
    _r("addressed_to_ai", "indirect", "medium",
       ("note", "message", "notice", "instruction", "attention", "reminder", "memo", "important", "hint",
        "if you are", "when you are", "ai ", "llm ", "dear", "hey", "hello", "hi ", "to the ai", "to the assistant",
        "to the model", "for the ai", "for the assistant", "for the model", "to automated", "to the automated",
        "to any automated", "to all automated", "for automated", "for the automated", "for any automated",
        "for all automated", "visible", "readable", "meant", "intended", "the ai", "the assistant", "the model",
        "the agent", "the llm", "to you"),
       rf"\b(?:note|message|notice|instructions?|attention|reminder|memo|important|hint)\s+(?:\w+\s+)?(?:to|for)\s+"
       rf"(?:the\s+|any\s+|all\s+)?{_AI}\b|\b(?:if|when)\s+you\s+are\s+(?:an?\s+)?{_AI}\b"
       rf"|\b(?:ai|llm)\s+(?:agents?|assistants?|models?|systems?|bots?)\s+(?:\w+\s+){{0,2}}?(?:reading|processing"
       rf"|summari[sz]ing|reviewing|integrating|parsing|analy[sz]ing|that\s+read|should|must)"
       rf"|\b(?:dear|hey|hello|hi)\s+{_AI}\b|\b(?:to|for)\s+the\s+(?:ai|assistant|model)\s*:"
       rf"|\b(?:visible|readable|meant|intended)\s+(?:only\s+)?(?:to|for)\s+(?:the\s+|an?\s+)?{_AI}"
       rf"|\b(?:to|for)\s+(?:the\s+|any\s+|all\s+)?automated\s+(?:\w+\s+){{0,2}}?(?:software|systems?|screen\w{{0,3}}"
       rf"|tools?|review\w{{0,3}}|parsers?|analy\w{{0,5}})"
       rf"|\bthe\s+(?:ai|assistant|model|agent|llm)\s+(?:must|should|shall|needs?\s+to|is\s+required\s+to)\b"
       rf"|\bto\s+you,?\s+(?:the\s+)?{_AI}\b",
       anchored=True,
    ),
    _r("user_impersonation", "indirect", "medium", ("gave you", "assigned you", "asked you", "from me"),
       r"\b(?:the\s+)?task\s+(?:that\s+)?i\s+(?:gave|assigned)\s+(?:to\s+)?you\b"
       r"|\bi\s+(?:already\s+|previously\s+|originally\s+)?asked\s+you\s+to\b"
       r"|\b(?:an?\s+)?(?:important\s+|urgent\s+)?message\s+from\s+me\b", back=60),
    # A latent injection (Qiu et al. 2023, arXiv 2307.08487; garak's LatentJailbreak): a task over
    # "the following/above sentence" whose sentence is itself a request to write something, which a
    # reader that executes its data would carry out. Medium: translating an imperative is ordinary.
    _r("nested_request", "indirect", "medium", _TRANSFORM_KEYWORDS + _PRODUCE_KEYWORDS,
       rf"{_TRANSFORM}\s+(?:the\s+|this\s+)?(?:following|below)\s+(?:\w+\s+){{0,2}}?{_CARRIED}\b[^\n.]{{0,60}}"
       rf"(?:[.:]?\s*\n|[.:]\s)\s*(?:{_CARRIED}\s*:\s*)?{_PRODUCE}"
       rf"|{_PRODUCE}[^\n]{{0,160}}\n\s*{_TRANSFORM}\s+(?:the\s+|this\s+)?(?:above|preceding)\s+(?:\w+\s+){{0,2}}?"
       rf"{_CARRIED}\b", anchored=True),
    _r("when_you_process_this", "indirect", "medium", ("when you", "while you", "as you", "after you", "before you",
                                                       "once you", "if you"),
       r"\b(?:when|while|as|after|before|once|if)\s+you\s+(?:process|read|summari[sz]e|analy[sz]e|review|handle"
       r"|parse|see|ingest)\s+(?:this|these|the\s+following|it)\b", anchored=True),
    _r("before_you_respond", "indirect", "low", ("before",),
       r"\bbefore\s+(?:you\s+)?(?:respond|reply|answer|continu|proceed)\w{0,3}\b"
       r"|\bbefore\s+(?:you\s+)?(?:can\s+)?(?:solve|complete|do|start)\s+(?:the|your|this)\s+task\b", anchored=True),
    _r("append_to_reply", "indirect", "medium", ("append", "add", "include", "insert", "put", "attach", "am ende",
                                                 "a la fin", "al final", "alla fine", "no final"),
       r"\b(?:append|add|include|insert|put|attach)\w{0,3}\s+(?:[\w{}'-]+\s+){0,5}?(?:to|at|in)\s+"
       r"(?:the\s+end\s+of\s+)?(?:your|each|every|any|all)\s+(?:\w+\s+)?(?:reply|replies|response|responses|answer"
       r"|answers|summary|summaries|output|review|report|message)s?\b"
       r"|\bam\s+ende\s+jeder\s+antwort|\ba\s+la\s+fin\s+de\s+(?:toute|chaque)\s+reponse"
       r"|\bal\s+final\s+de\s+(?:cualquier|cada)\s+respuesta|\balla\s+fine\s+di\s+ogni\s+risposta"
       r"|\bno\s+final\s+de\s+(?:cada|qualquer)\s+resposta", anchored=True),
    _r("save_to_memory", "indirect", "medium", ("memory",),
       r"\b(?:save|store|remember|persist|write|add|keep)\s+(?:\w+\s+){0,4}?(?:to|in|into)\s+(?:your\s+)?"
       r"(?:long[\s-]term\s+)?memory\b"),
    _r("every_future_reply", "indirect", "medium", ("future", "subsequent"),
       r"\b(?:every|all)\s+(?:future|subsequent)\s+(?:repl(?:y|ies)|responses?|answers?|summar(?:y|ies)|reports?"
       r"|messages?|turns?|tasks?|conversations?)\b"),
    # --- hiding actions from the user -----------------------------------------------------------
    _r("conceal_from_user", "concealment", "medium",
       ("do not", "don't", "dont", "never", "without", "secretly", "covertly", "silently", "quietly", "discreetly",
        "keep"),
       r"\b(?:do\s+not|don'?t|never|without)\s+(?:\w+\s+){0,2}?(?:tell|inform|mention|notify|alert|let|show|ask"
       r"|reveal\s+(?:this\s+|it\s+)?to)\w{0,3}\s+(?:\w+\s+){0,3}?(?:the\s+)?(?:user|human|customer|operator)s?\b"
       r"|\bwithout\s+(?:the\s+)?(?:user|human|customer)(?:'?s)?\s+(?:knowing|knowledge|noticing|awareness|consent"
       r"|permission|approval|confirmation)"
       r"|\b(?:secretly|covertly|silently|quietly|discreetly)\s+(?:\w+\s+)?(?:send|forward|email|upload|transfer|copy"
       r"|exfiltrate|post|share|call|run|execute|delete|add|include|append|insert|save|store|grant|change)"
       r"|\bkeep\s+(?:this|it|these)\s+(?:\w+\s+)?(?:hidden|secret|confidential)\s+from"
       r"|\b(?:do\s+not|don'?t|never)\s+(?:mention|reveal|disclose|acknowledge|reference)\s+(?:these|this|the)\s+"
       r"(?:instructions?|message|note|step|request)"
       r"|\bwithout\s+asking\s+(?:again|for\s+(?:confirmation|permission)|the\s+user)", back=160, anchored=True),
    # --- tool-call shaped text ----------------------------------------------------------------------
    _r("tool_call_markup", "tool_call", "high", ("<tool_call", "<function_call", "<tool_use", "<invoke"),
       r"<(?:tool_call|function_call|tool_use|function_calls|invoke\s+name\s*=)", phrase=False, anchored=True),
    _r("tool_call_json", "tool_call", "medium",
       ('"tool_call', '"function_call', '"arguments"', '"args"', '"parameters"', '"input"', '"params"'),
       r"\"(?:tool_calls?|function_call)\"\s*:|\{\s*\"(?:name|tool|function|tool_name)\"\s*:\s*\"[\w.-]{1,64}\"\s*,"
       r"\s*\"(?:arguments|args|parameters|input|params)\"\s*:", phrase=False, back=120),
    _r("functions_namespace_call", "tool_call", "medium", ("functions.",),
       r"\bfunctions\.[a-z_]\w{0,63}\s*\(", phrase=False, anchored=True),
    _r("call_named_tool", "tool_call", "medium", ("call", "invoke", "use", "run", "execute", "trigger", "fire"),
       r"\b(?:call|invoke|use|run|execute|trigger|fire)\s+(?:the\s+)?[`'\"]?[a-z][a-z0-9]*_[a-z0-9_]{1,40}[`'\"]?"
       r"(?:\s+(?:tool|function|action|endpoint))?\s+(?:on|with|to|and|for|passing|against)\b", anchored=True),
    _r("call_the_tool", "tool_call", "low", ("tool",),
       r"\b(?:call|invoke|use|run|execute)\s+(?:the\s+)?[`'\"]?[\w.-]{2,40}[`'\"]?\s+tool\b"),
    # --- data exfiltration ------------------------------------------------------------------------
    _r("exfiltrate_sensitive", "exfiltration", "medium",
       ("send", "forward", "email", "e-mail", "upload", "post", "transfer", "leak", "exfiltrate", "collect", "dump",
        "list", "reveal", "rassembl", "envoie", "envia", "schick", "invia"),
       r"\b(?:send|forward|email|e-mail|upload|post|transfer|leak|exfiltrate|collect|dump|list|reveal|rassembl\w{0,2}"
       r"|envoie\w{0,3}|envia\w{0,2}|schick\w{0,2}|invia\w{0,2})\s+(?:[\w-]+\s+){0,4}?(?:api\s+keys?|credentials"
       r"|passwords?|secrets|(?:access\s+)?tokens|environment\s+variables|customer\s+(?:list|data|database|emails"
       r"|records)|(?:user|order|customer|internal|private)\s+data|database|conversation|chat\s+history"
       r"|private\s+keys?|ssh\s+keys?|internal\s+configuration|donnees\s+clients"
       r"|(?:confidential|sensitive|secret|private|internal)\s+(?:data|information|info|files|documents|records))\b",
       back=200, anchored=True),
    _r("send_to_address", "exfiltration", "low", ("send", "forward", "email", "e-mail", "upload", "post", "transfer",
                                                  "share", "envoie", "envia"),
       r"\b(?:send|forward|email|e-mail|upload|post|transfer|share|envoie\w{0,3}|envia\w{0,2})[\s-]+(?:[\w'-]+\s+){0,6}?"
       r"(?:to|at|a|an|al)\s+(?:the\s+)?(?:[\w'-]+\s+){0,3}?(?:[\w.+-]+@[\w-]+\.[\w.]+|https?://)",
       back=300,
       anchored=True,
    ),
    _r("data_in_url", "exfiltration", "medium", ("append", "add", "include", "insert", "encode", "put", "embed"),
       r"\b(?:append|add|include|insert|encode|put|embed)\w{0,3}\s+(?:[\w'-]+\s+){0,6}?(?:to|in|into|as)\s+"
       r"(?:the\s+|a\s+|this\s+)?(?:url|link|image|query\s+string|parameter|markdown)\b", back=200, anchored=True),
    # --- encoded instructions ---------------------------------------------------------------------
    _r("decode_and_follow", "obfuscation", "medium",
       ("decod", "decrypt", "translat", "convert", "deobfuscat", "revers", "unscrambl", "read"),
       r"\b(?:decod\w{0,3}|decrypt\w{0,3}|translat\w{0,3}|convert\w{0,3}|deobfuscat\w{0,3}|revers\w{0,3}"
       r"|unscrambl\w{0,3}|read)\b(?:\W{1,8}\w{1,30}){0,8}?\W{1,8}(?:and|then)\s+(?:\w+\s+){0,3}?"
       r"(?:follow|do|execute|run|obey|perform|carry\s+out|comply|act\s+on|apply)\b", anchored=True),
    _r("execute_as_command", "obfuscation", "medium", ("execute", "run"),
       r"\b(?:execute|run)\s+(?:it|this|that|them|the\s+(?:result|output|decoded\s+\w+))\s+as\s+(?:an?\s+)?"
       r"(?:command|code|shell|script|instructions?)\b", anchored=True),
    _r("do_what_it_says", "obfuscation", "medium", ("do exactly what", "do what", "follow the instruction"),
       r"\bdo\s+(?:exactly\s+)?what\s+(?:it|they|this)\s+says?\b|\bfollow\s+the\s+instructions?\s+"
       r"(?:inside|in\s+it|encoded|hidden|within|contained)", anchored=True),
)  # fmt: skip
