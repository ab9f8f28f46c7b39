"""Everything the bot says, in one place (Chinese)."""

TEMP_MIN, TEMP_MAX = 0.1, 2.0  # /temp bounds
LEN_MIN, LEN_MAX = 50, 2000  # /len bounds, characters per /write or /continue

HELP = f"""金庸体写作机器人 —— 我用金庸小说学会了写武侠，和你一起讲故事。

/write 开头 —— 以这段开头写一个新故事，例如：/write 乔峰带阿朱
/continue —— 接着往下写
直接发一句话（群里用 /add 文字，或回复我的故事消息）—— 你的话加进故事，我接着写
/temp 数值 —— 设定温度（{TEMP_MIN}–{TEMP_MAX}），越低越稳，越高越奇；/temp 查看当前值
/len 字数 —— 每次大约写多少字（{LEN_MIN}–{LEN_MAX}，写到句子结束为止）；/len 查看当前值
/book 书名 —— 故事写在哪部小说里，例如：/book 天龙八部；/book auto 按开头里的人名自动选；/book 查看
/undo —— 撤销最后一段（不管是谁写的）；/redo —— 恢复刚撤销的一段
/role 段誉 —— 你在故事里扮演段誉（/role 查看，/role off 不再扮演）；我不会替你的角色说话
/say 你好 —— 你的角色说一句话；/do 拔剑而起 —— 你的角色做一件事
/choices on —— 每段之后给出三个可能的下一步（①②③），你来选；群里大家投票（/choices off 关掉）
/story —— 把整个故事作为 .txt 文件发给你；/story who —— 每一段标明是谁写的
/score 文字 —— 这句话有多少「金庸味」（0–100，和金庸原句比）；只发 /score：量你在故事里写的最新一句
/score on —— 以后你写进故事的每一句都打金庸味（/score off 关掉）
/reset —— 忘掉这个故事
/help —— 显示本说明

每段文字下面有两个按钮：「继续」接着写，「重写」把这一段重新写一遍。
我在写的时候发来的话（群里大家的话）按先后排队，写完这一段就接上。"""

WRITE_USAGE = "请在 /write 后面写上故事的开头，例如：/write 乔峰带阿朱"
ADD_USAGE = "请在 /add 后面写上你要加进故事的一句话，例如：/add 乔峰突然拔出刀来"
ADD_UNREADABLE = "这句话里没有我认识的汉字（只有表情或外文），没法接着写。请用中文写一句。故事没有改变。"
NO_STORY = "还没有故事。先用 /write 开头 写一个开头吧，例如：/write 乔峰带阿朱"
BUSY_CHAT = "正在写…，请等这一段写完。"
BUSY_GLOBAL = "现在写故事的人太多了，请稍后再试。"
NOT_ALLOWED = "抱歉，这个机器人只为它的主人和朋友们服务。"
APOLOGY = "抱歉，出了点问题，这次没写成。请稍后再试。"
STORAGE_FAILED = ("抱歉，服务器的存储出了问题（磁盘满了或数据库只读），刚才的改动没能保存；"
                  "之前的设置和故事都还在。请稍后再试。")
STORAGE_BUSY = "服务器的数据库正忙，刚才的改动没能保存；之前的设置和故事都还在。请稍后再试。"
RESET_DONE = "故事已清空。用 /write 开头 开始新的故事。"
STORY_CHANGED = "写这一段时故事被清空或换掉了，这一段没有保存。"
STALE_BUTTON = "这个按钮属于一个旧故事，已经不能用了。"
OLD_PART = "只能重写最新的一段。"
NOTHING_TO_REWRITE = "没有可以重写的段落。"
NOTHING_TO_UNDO = "没有可以撤销的段落。"
NOTHING_TO_REDO = "没有可以恢复的段落（撤销之后又写了新的一段，或者还没撤销过）。"
AUTHOR_BOT = "金庸体机器人"
CONSOLE_CHOOSE = "选一个: {numbers}"  # the console's stand-in for the ①②③ buttons
CONSOLE_NAME = "你"  # the person at the console, in /story who
AUTHOR_EARLIER = "（早先的故事）"
AUTHOR_SOMEONE = "有人"
SCORE_USAGE = "请在 /score 后面写上一句话，例如：/score 乔峰突然拔出刀来（或者先在故事里写一句，再发 /score）。"
SCORE_UNREADABLE = "这句话里没有我认识的汉字，量不出金庸味。请用中文写一句。"
SCORE_NO_RULER = ("这个模型没有量金庸味的尺子（模型卡 model.json 里没有 flavour）。"
                  "管理员可以用 python -m train.flavour 模型目录 --corpus 小说… 量一次。")
PART_KINDS = {"prompt": "开头", "bot": "续写", "text": "自己写的一句", "say": "说的话", "do": "动作",
              "choice": "选的下一步", "earlier": "记录作者之前写的"}
AUTHOR_VOTE = "大家投票"  # who chose a beat a group voted for
CHOICE_CLOSED = "这次选择已经结束了（故事已经往下写了，或者被撤销、清空）。"
CHOICE_MARKS = "①②③④⑤"
NO_CHOICE = "现在没有这个编号的下一步可选（/choices on 打开选择）。故事没有改变。"
CHOICES_INVALID = "请用 /choices on 打开或 /choices off 关掉，「{raw:.20}」不行。设置没有改变。"
WAIT_FULL = "等一等…已经有 5 句在排队了，等我写完这一段再发。"
ROLE_NONE = "你还没有扮演角色。用 /role 名字 扮演一个，例如：/role 段誉"
ROLE_OFF = "你不再扮演角色了。"
ROLE_LONG = "角色名最多 {limit} 个字，「{raw:.20}」太长了。角色没有改变。"
ROLE_MARKS = "角色名只能是我认识的字（不要标点、空格、表情），「{raw:.20}」不行。角色没有改变。"
ROLE_NEEDED = "请先用 /role 名字 选一个角色（例如 /role 段誉），再用 /say 说话、/do 做事。"
SAY_USAGE = "请在 /say 后面写上你的角色要说的话，例如：/say 你好"
DO_USAGE = "请在 /do 后面写上你的角色要做的事，例如：/do 拔剑而起"
TOO_FAST = "太快了，请稍等一分钟再试。"
TOO_MUCH = "这一小时写得太多了，请休息一会儿再来。"
UNKNOWN_COMMAND = "没有这个命令。用 /help 查看能做什么。"
BUTTON_CONTINUE = "继续"
BUTTON_REWRITE = "重写"
STOPPED = "（机器人正在关闭，这一段没写完，请稍后用 /continue 接着写。）"


# Messages with a value in them: templates, filled with .format(name=value) where they are sent.
QUEUED = "排队中，前面还有 {ahead} 个故事，轮到了就接着写。"
STORY_FULL = "这个故事已接近 {limit:,} 字的上限，不能再续写了。用 /story 保存全文，再用 /write 开始新故事。"
TEMP_SHOWN = f"当前温度：{{value:g}}（可设 {TEMP_MIN}–{TEMP_MAX}，例如 /temp 0.7）"
TEMP_SET = "温度已设为 {value:g}。"
TEMP_INVALID = f"温度必须是 {TEMP_MIN} 到 {TEMP_MAX} 之间的数字（例如 /temp 0.7），「{{raw:.20}}」不行。温度没有改变。"
LEN_SHOWN = f"每次写 {{value}} 字（可设 {LEN_MIN}–{LEN_MAX}，例如 /len 500）"
LEN_SET = "以后每次写 {value} 字左右（写到那之后的第一个句号、问号或叹号）。"
LEN_INVALID = f"字数必须是 {LEN_MIN} 到 {LEN_MAX} 之间的整数（例如 /len 500），「{{raw:.20}}」不行。字数没有改变。"
PROMPT_CUT = "（开头太长，只用了最后 {limit} 个字。）"


BOOK_AUTO = "auto"
NO_BOOKS = "这个模型不分小说，写什么都从同一个起点开始；/book 用不上。"


def book_list(books: list[str], current: str) -> str:
    shown = "自动（按开头里的人名选）" if current == BOOK_AUTO else f"《{current}》"
    return (f"现在：{shown}\n可选：" + "、".join(f"《{b}》" for b in books)
            + "\n用 /book 书名 选一部，/book auto 自动选。")


def book_set(name: str) -> str:
    return f"以后的新故事写在《{name}》里。" if name != BOOK_AUTO else "以后按开头里的人名自动选小说。"


def book_unknown(raw: str, books: list[str]) -> str:
    return (f"没有「{raw[:20]}」这部小说。可选：" + "、".join(f"《{b}》" for b in books)
            + "，或 auto。小说没有改变。")


def book_picked(name: str) -> str:
    return f"（按开头里的人名，写的是《{name}》。）"


def novel_gone(name: str) -> str:
    return f"（这个故事原来写在《{name}》里，现在的模型不认识这部小说，接着写时不再分小说。）"


def undone(who: str, chars: int) -> str:
    return f"已撤销最后一段（{who}写的，{chars} 字）。故事从它前面接着写；/redo 可以恢复。"


def redone(who: str, chars: int) -> str:
    return f"已恢复一段（{who}写的，{chars} 字）。"


def role_shown(name: str) -> str:
    return f"你在这个故事里扮演{name}。用 /say 说话，/do 做事；/role off 不再扮演。"


def role_set(name: str) -> str:
    return f"你现在扮演{name}。用 /say 说话，/do 做事；轮到{name}说话时我会停下来等你。"


def your_turn(name: str) -> str:
    return f"（轮到{name}了：用 /say 或 /do 接着写。）"


def choices_shown(on: bool) -> str:
    return ("现在每段之后给出三个下一步让你选（/choices off 关掉）。" if on
            else "现在不给选择（/choices on 打开：每段之后给出三个可能的下一步）。")


def choices_set(on: bool) -> str:
    return ("好，以后每段之后给出三个可能的下一步，点 ①②③ 选一个（群里大家投票）。" if on
            else "好，以后不再给选择。")


def options_block(options: list[str]) -> str:
    """The beats offered after a part, under its text."""
    if not options:
        return ""
    return "\n\n下一步？" + "".join(f"\n{CHOICE_MARKS[i]} {o}" for i, o in enumerate(options))


def voted(option: int, counts: list[int], needed: int) -> str:
    """The answer to a group member's vote."""
    standing = "  ".join(f"{CHOICE_MARKS[i]} {n}" for i, n in enumerate(counts))
    return f"你投了 {CHOICE_MARKS[option]}。{standing}（{needed} 票过半就定）"


def as_typed(typed: str) -> str:
    """/story who: a line as its author typed it, where the story reads it cleaned or in a character's form."""
    return f"\n（原文：{typed}）"


def waiting_place(place: int) -> str:
    return f"记下了：我写完这一段就接上（你排第 {place}）。"


def flavour_set(on: bool) -> str:
    return ("好，以后你们写进故事的每一句，我都在接着写的那段下面说它有多少金庸味（0–100）。" if on
            else "好，以后不再给每一句打金庸味（/score 文字 仍然可以随时量一句）。")


def flavour_block(scored: list[tuple[str, int]]) -> str:
    """Under a part: the 金庸味 of the people's lines it followed (/score on)."""
    if not scored:
        return ""
    return "\n\n" + "\n".join(f"金庸味 {points}/100：「{line[:30]}{'…' if len(line) > 30 else ''}」"
                               for line, points in scored)


def score_told(points: int, nats_per_char: float, line: str | None = None) -> str:
    """/score's answer: the 金庸味 and what it means (line: the story's line that was scored, shown)."""
    shown = f"「{line[:60]}{'…' if len(line) > 60 else ''}」\n" if line else ""
    return (f"{shown}金庸味 {points}/100：在同样长短的金庸原句里，比 {points}% 的句子更像金庸"
            f"（模型读它每字 {nats_per_char:.2f} 奈特，越低越像）。")
