# natter 的简体中文目录：natter 对人说的每一句话。
# 与英文目录的消息和 $占位符 一一对应（有测试检查）。
# 名字、消息正文和时间戳从不翻译。版式在文字前后加的记号（"* "、"! "、"→ "）不属于文字本身。
# 见 docs/TRANSLATING.md。

## 连接与离开（行模式客户端和全屏客户端）

prompt-name = 你的名字：
connected = 已连接到 { $server }，名字是 { $name }。直接输入即可聊天；/help 列出命令；/quit 或 exit 退出。
connection-lost = 连接断开；正在重连…
reconnected-catching-up = 已重新连接；正在补上你错过的消息
reconnected-caught-up = 已重新连接；已补上你错过的消息
reconnecting-attempt = 正在重连，第 { $attempt } 次
sending = { $count } 条发送中…
bye = 再见
server-shutting-down = 服务器正在关闭
not-sent = 未发送（{ $reason }）：{ $text }
not-sent-unconfirmed = 未发送（服务器始终没有确认）：{ $text }
no-earlier-messages = { $where } 没有更早的消息
private-messages = 私聊
gave-up = 已放弃：{ $reason }
gave-up-unreachable = 尝试 { $attempts } 次后仍无法连接 { $server }
still-sending = 仍在发送 { $list }；再按一次 Ctrl-C 强制退出（未确认的消息会丢失）

## 进出提示。$where 是 " #房间"；在纯文本模式下，大厅则为空。

presence-joined = { $name } 加入了{ $where }
presence-you-joined = 你加入了{ $where }
presence-left = { $name } 离开了{ $where }
presence-left-why = { $name } 离开了{ $where }（{ $why }）
presence-reconnected = { $name } 重新连接到{ $where }
left-reason = { $reason ->
    [disconnect] 连接中断
    [too_slow] 读取太慢
    [timeout] 超时
    [excess_flood] 发送过快
   *[other] { $reason }
}

## 列表

members-count = { $room } 有 { $count } 位成员；/who { $room } 列出他们
members-in = { $room } 的成员：{ $names }
rooms-list = 房间：{ $list }
members-here = { $count } 人在线

## 消息："[时间] 你 → bob: 正文" 和 "[时间] bob → 你: 正文" 中的"你"

you = 你

## 命令与 /help

usage = 用法：{ $usage }
unknown-command = 未知命令 { $command }；/help 列出所有命令
help-intro = 输入一行文字即在 { $room } 发言（你的当前房间；/join 可切换）。命令：
usage-msg = /msg 名字 内容
usage-join = /join 房间
usage-join-one-word = /join 房间（一个词：房间名不能有空格，例如 /join my-room）
usage-leave = /leave [房间]
usage-who = /who [房间]
usage-lang = /lang en|zh-CN
usage-rooms = /rooms
usage-history = /history
usage-help = /help
usage-clear = /clear
usage-f2 = F2
usage-tab = Tab
help-msg = 发送私聊消息
help-join = 加入（或创建）房间并设为当前房间
help-leave = 离开房间（默认：当前房间）
help-who = 列出房间成员
help-rooms = 列出房间
help-history = 显示当前房间更早的消息
help-help = 显示本列表
help-lang = 切换 natter 对你使用的语言
help-quit = 退出聊天
help-slash = 发送以 '/' 开头的文字
help-quit-keys = /quit 或 exit
help-slash-keys = //文字
help-clear = 清空此对话窗口
help-switch = 切换对话
help-switch-keys = Alt-1..9 Ctrl-N/P
help-scroll = 滚动；End 回到最新消息
help-scroll-keys = PgUp/PgDn、滚轮
help-members = 显示或隐藏成员列表
help-complete = 补全名字或命令
lang-switched = natter 现在对你说中文
lang-unknown = natter 只会 en 和 zh-CN；没有 { $lang }

## 全屏客户端

status-connected = 已连接
status-reconnecting = { $secs } 秒后重连
status-offline = 离线：{ $why }
status-left = 已退出
status-scrolled = 正在回看（End：跟随）
msg-sending = …发送中
msg-not-sent = ✗ 未发送：{ $reason }
paste-confirm = 把粘贴的 { $count } 行作为一条消息发送？ Enter：发送 · Esc：取消

## 纯文本模式（nc、telnet）

plain-greeting = 这是一个 natter 聊天服务器。输入你的名字并按回车（natter 自己的客户端：natter join）。
plain-welcome = 欢迎，{ $name }！输入消息后按回车。/help 列出命令；exit 退出。
plain-type-another-name = 请换一个名字：
plain-not-utf8 = 每行必须是 UTF-8 文本
plain-clear = /clear 只适用于 natter 自己的客户端
plain-bye = 再见！
http-not-a-web-server = 这是 natter 聊天服务器，不是网站：请用 `natter join` 或 `nc 主机 端口` 连接。
plain-shutdown = 服务器正在关闭。再见！

## 命令行和连接的错误

error-connect = 无法连接到 { $server }：{ $why }
error-connect-refused = 那里没有程序在监听；该地址上运行了 `natter serve` 吗？
error-connect-address = { $why }（请用 主机:端口，例如 127.0.0.1:5500）
error-name-refused = 服务器拒绝了这个名字：{ $why }
error-no-name = 没有给出名字（请用 --name 名字）
error-connection-lost = 与服务器的连接断开了
error-no-answer = { $server } 在 { $secs } 秒内没有应答；那里运行着 natter 服务器（`natter serve`）吗？
error-interrupted = 已中断
error-not-natter = { $server } 有应答，但不是 natter 服务器；请检查地址和端口
error-unconfirmed = 有 { $count } 条消息没有得到服务器确认
error-refused = 服务器拒绝了 { $count } 条消息：{ $first }
error-terminal = 终端错误：{ $why }
error-stray-words = 多余的参数 { $words }：用 --name 给出名字（natter join --name { $first }），用 --server 主机:端口 给出服务器

## 按错误码的错误帧（PROTOCOL.md §5）。占位符来自帧的 "args"。

error-bad_frame = { $reason ->
    [utf8] 帧不是有效的 UTF-8
    [json] 帧不是有效的 JSON：{ $detail }
    [object] 帧必须是 JSON 对象
    [no_type] 帧没有 "type" 字符串
   *[fields] { $kind } 帧有误：{ $detail }
}
error-frame_too_large = 帧超过 { $max } 字节；已跳过
error-unknown_type = 未知的帧类型 { $kind }
error-not_registered = 请先发送 hello
error-already_registered = 你已经以 { $name } 的身份登记
error-unsupported_version = 本服务器使用协议版本 { $supported }
error-invalid_name = { $reason ->
    [empty] 名字不能为空
    [too_long] 名字最多 { $max } 个字符
   *[bad_char] 名字只能包含字母、数字、'_'、'-' 和 '.'（发现了 { $char }）
    [mixed_scripts] 名字不能混用通常不一起书写的文字（例如在拉丁字母中夹一个西里尔字母 а）
}
error-name_owned = { $name } 已归证明过身份的人所有；请换一个名字，或在拥有它的设备上登录
error-bad_proof = 名字的身份证明不符；你的客户端密钥可能已经改变
error-bad_password = 密码错误（或这个名字没有设置密码）；下次尝试需等待 { $try_again_in } 秒
error-try_again_later = { $what ->
    [claims] 来自你的地址的新名字太多；请在 { $try_again_in } 秒后再试
   *[passwords] 来自你的地址的错误密码太多；请在 { $try_again_in } 秒后再试
}
error-insecure = 密码只能通过 TLS 或来自服务器本机的连接传送；服务器没有读取它
error-weak_password = { $reason ->
    [too_long] 密码最多 { $max } 字节
   *[too_short] 密码至少需要 { $min } 个字符
}
error-tls_required = 本服务器只接受来自其他机器的 TLS 连接：请用 natter join（它使用 TLS）或 openssl s_client 连接
error-banned = { $what ->
    [address] 你的地址已被本服务器禁止连接
   *[name] 名字 { $name } 已被本服务器禁用
}
error-blocked = { $name } 不接收你的私聊
error-muted = { $until ->
    [none] 你在 { $room } 没有发言权：它仅限有发言权者发言
   *[other] 你在 { $room } 被禁言，直到 { $until }
}
error-invite_only = { $room } 仅限邀请；请让它的管理员 /invite 你
error-name_taken = 名字 { $name } 已被占用
error-no_such_user = 这里没有叫 { $name } 的人
error-not_in_room = 你不在 { $room }
error-invalid_room = 房间名 { $room } 无效：{ $reason ->
    [empty] 名字不能为空
    [too_long] 名字最多 { $max } 个字符
   *[bad_char] 名字只能包含字母、数字、'_'、'-' 和 '.'（发现了 { $char }）
    [mixed_scripts] 名字不能混用通常不一起书写的文字（例如在拉丁字母中夹一个西里尔字母 а）
}
error-invalid_text = { $reason ->
    [empty] 消息内容为空
    [too_long] 消息内容超过 { $max } 字节
   *[control] 消息内容含有控制字符（{ $char }）；只允许换行和制表符
}
error-too_slow = 你没有在读取；连接将断开
error-server_error = { $what ->
    [store] 服务器无法保存你的消息；消息没有发出
    [full] 服务器现在无法保存消息；消息没有发出
    [history] 服务器无法读取历史记录
    [rooms] 服务器现在查不到你的房间；请稍后再试
   *[other] 服务器没能完成这个操作；请再试一次
}
error-history_gap = 历史从序号 { $oldest } 开始；{ $after } 之后、它之前的消息已不存在
error-excess_flood = { $what ->
    [before_hello] hello 之前的帧太多
   *[other] 你发送得太多太快
}
error-registration_timeout = 没有及时收到 hello
error-idle_timeout = 太久没有收到你的任何消息
error-server_full = 服务器已满；请稍后再试
error-too_many_connections = 来自你的地址的连接太多
error-too_many_rooms = 你已在 { $count } 个房间中，这是本服务器允许的上限；请先 /leave 一个

## `natter join --help`

help-cli-join = 加入一个聊天服务器
help-cli-join-server = 要加入的服务器，格式为 主机:端口（只写主机则为 5500 端口）
help-cli-join-name = 你的名字（没有给出时会询问）
help-cli-join-plain = 即使在终端上也使用纯文本行模式
help-cli-join-timestamps = 全屏客户端的时间戳：short 为 [HH:MM:SS]，full 为 [YYYY-MM-DD HH:MM:SS]
help-cli-join-bell = 有人提到你的名字时让终端响铃
help-cli-join-timeout = 等待服务器接受连接并应答的秒数，超时后放弃（或重试）
help-cli-join-lang = natter 说话使用的语言：en 或 zh-CN。默认取自 LC_ALL、LC_MESSAGES 或 LANG
key-unusable = 无法在 { $dir } 保存你的密钥（{ $why }）；以访客身份加入，名字不会为你保留
help-cli-join-data_dir = 保存让名字归你所有的密钥的目录（默认：~/.local/share/natter）
help-cli-join-guest = 以访客身份加入：没有密钥，名字不会为你保留（也不能用别人拥有的名字）
key-not-a-key = { $path } 不是 natter 密钥
password-set = 密码已设置：在其他设备上可以用它以你的身份登录
plain-type-your-name = 请输入你的名字：
plain-type-password = 如果这是你的名字，请输入它的密码（空行：换一个名字）：
usage-password = /password
usage-password-nc = /password 新密码
help-password = 为你的名字设置密码，以便在其他设备上登录
prompt-password = { $name } 的密码（空行：换一个名字）：
prompt-new-password = 新密码（输入时不会显示）：
prompt-new-password-again = 再输入一次：
password-mismatch = 两次输入的密码不同；没有做任何更改
error-cert-changed = { $server } 出示的证书与之前不同：之前是 { $old }，现在是 { $new }。可能有人在截听连接。如果是服务器管理员更换了证书，请从 { $file } 中删除 { $server } 那一行（或用 --fingerprint { $new } 连接）后重新连接
error-not-pinned = { $server } 出示的证书是 { $got }，不是指定的 { $pinned }；不连接
error-tls = 无法与 { $server } 进行 TLS 通信（{ $why }）；如果它是旧版 natter，可用 --no-tls 以明文连接（网络上的任何人都能读到）
first-use = 第一次通过 TLS 连接 { $server }：它的证书是 { $fingerprint }（已记住；请向服务器管理员确认这与 `natter serve` 打印的一致）
help-cli-join-no_tls = 使用明文，不用 TLS（网络上的任何人都能读到；用于不支持 TLS 的服务器）
help-cli-join-fingerprint = 只信任具有此指纹的服务器证书（SHA256:…，与 natter serve 打印的一致）
tls-no-certificate = 服务器没有出示证书
error-forbidden = { $what ->
    [block] 只有名字的拥有者才能屏蔽别人（访客不能）
    [file] 只有 { $room } 的成员才能下载其中的文件；请先 /join
    [private_file] 只有私聊的双方才能下载其中的文件
   *[other] 你不能在这里这样做
}
usage-block = /block 名字
help-block = 拒收某人的私聊（/unblock 名字 重新接收）
usage-forget-me = /forget-me
help-forget-me = 在本服务器上忘掉你的名字和私聊历史
forget-me-confirm = 这会在本服务器上永久忘掉你的名字并删除你的私聊；确定的话请再输入一次 /forget-me
forgotten = 你的名字已不归任何人所有，私聊历史已删除；你现在是访客
blocked-on = 你不再接收 { $name } 的私聊
blocked-off = 你重新接收 { $name } 的私聊
room-event = { $kind ->
    [op] 让 { $name } 成为管理员
    [deop] 取消了 { $name } 的管理员身份
    [voice] 给了 { $name } 发言权
    [devoice] 收回了 { $name } 的发言权
    [kick] 把 { $name } 请出了房间
    [kick_why] 把 { $name } 请出了房间（{ $text }）
    [ban] 禁止 { $name } 进入房间
    [unban] 解除了对 { $name } 的禁止
    [mute] 禁言 { $name } { $minutes } 分钟
    [unmute] 解除了 { $name } 的禁言
    [invite] 邀请了 { $name }
    [topic] 设置了话题：{ $text }
    [invite_only] 设置房间仅限邀请：{ $on }
    [moderated] 设置房间仅限有发言权者发言：{ $on }
   *[other] 对 { $name } 执行了 { $kind }
}
topic-is = { $room } 的话题：{ $topic }
on = 开
off = 关
usage-moderate = /kick 名字 …
help-moderate = 房间管理员：/op /deop /voice /devoice /kick /ban /unban /mute /unmute /invite 名字，/topic 文字，/invite-only on|off，/moderated on|off
new-while-away = 你不在时收到 { $count } 条私聊：

## Sharing files (issue 13)

file-shared = 分享了 { $file }（{ $size }）— { $get } { $id }
file-shared-expired = 分享了 { $file }（{ $size }）— 已过期
error-file_too_big = 本服务器不能分享超过 { $max } 的文件
error-quota_exceeded = { $what ->
    [user] 分享这个文件会超出你的配额 { $limit }；你分享过的文件会按期过期
   *[server] 服务器的文件存储已满（{ $limit }）；等旧文件过期后再试
}
error-storage_full = 服务器磁盘没有空间存放这个文件；文件没有保存（聊天不受影响）
error-no_such_file = 没有编号为 { $file } 的共享文件
error-file_expired = 文件 { $file } 已过期，服务器不再保存
error-bad_checksum = 收到的文件与声明的不同（SHA-256 不符）；这次上传已丢弃
error-unknown_transfer = 这次传输已失效；请重新请求
error-files_off = 本服务器不保存文件
usage-send = /send 路径
send-nc = 文件要用 natter 自己的客户端分享：natter send 文件 --room 房间（用 natter get 编号 下载）
help-send = 把文件分享到当前对话（Tab 补全路径）
usage-get = /get 编号
help-get = 把编号为 N 的共享文件下载到你的下载文件夹
usage-cancel = /cancel
help-cancel = 停止正在进行的传输
send-cannot-read = 无法读取 { $path }：{ $why }
send-not-a-file = { $path } 不是文件
transfer-up = ↑ { $file } { $percent }% { $rate }/秒 { $eta }
transfer-down = ↓ { $file } { $percent }% { $rate }/秒 { $eta }
transfer-eta = { $secs ->
    [0] 即将完成
   *[other] 还剩 { $secs } 秒
}
transfer-checking = 正在校验 { $file }…
transfer-resuming = { $file }：连接中断；从 { $done } 处继续
upload-done = { $file } 已分享：/get { $id }
download-done = 已保存 { $path }（{ $size }），校验无误
download-corrupt = { $file } 传输损坏（SHA-256 不符）；已删除
transfer-failed = { $file }：{ $why }
transfer-cancelled = 已取消 { $file }
transfer-none = 没有正在进行的传输
downloads-unusable = 无法写入 { $dir }：{ $why }
help-cli-send = 把文件分享给一个房间或一个人（再次运行会续传中断的上传）
help-cli-send-files = 要分享的文件
help-cli-send-to = 私下分享给这个人
help-cli-send-room = 分享到这个房间（默认：lobby）
help-cli-get = 下载一个共享文件，校验完整，并续传上次留下的部分
help-cli-get-id = 文件编号，即消息中显示的数字（/get 17）
help-cli-get-output = 保存到哪里（默认：下载目录，从不覆盖）
help-cli-join-downloads = 下载保存到哪里（默认：你的“下载”文件夹）

## The browser client (issue 14)

web-name = 名字
web-password = 密码
web-password-hint = （如果这个名字是你的）
web-join = 加入
web-message = 消息——输入 /help 查看命令
web-send = 发送
web-sending = 发送中…
web-not-sent = 没有发出：{ $reason }
web-reconnecting = { $secs } 秒后重新连接…
web-connecting = 正在连接…
web-members = { $room } 中有 { $count } 人
web-help = /msg 名字 内容 · /join 房间 · /leave · /who · /quit · Tab 补全名字 · //text 发送以 / 开头的文字
web-unknown-command = 没有这个命令：{ $command }
web-usage-msg = /msg 名字 内容
web-file = 分享了 { $file }（{ $size }）— 在 natter 客户端里用 /get { $id } 获取
web-file-expired = 分享了 { $file }（{ $size }）— 已过期
web-conversations = 对话
web-messages = 消息
web-attach = 分享文件
web-download = 下载
web-uploading = 正在分享 { $file }…
web-upload-failed = { $file } 没有分享出去：{ $why }
web-language = 语言
web-language-auto = 跟随浏览器
web-offline = 离线：等待网络恢复

## IRC front end (natter serve --irc): the texts of numerics and errors
irc-not-enough-params = 参数不够
irc-no-such-channel = 没有这个频道
irc-no-such-nick = 没有这个昵称或频道
irc-end-of-names = /NAMES 列表结束
irc-not-on-channel = 你不在这个频道
irc-no-nickname = 没有给出昵称
irc-end-of-whois = /WHOIS 列表结束
irc-your-host = 你的服务器是 { $server }，运行 { $version }
irc-no-reregister = 不能重复注册
irc-not-registered = 你还没有注册
irc-now-away = 你已被标记为离开
irc-back = 你已不再被标记为离开
irc-welcome = 欢迎来到 natter，{ $nick }
irc-list-header = 人数  名称
irc-unknown-command = 未知命令
irc-unknown-mode-flag = 未知的 MODE 标志
irc-created = 本服务器创建于启动之时
irc-shutting-down = 服务器正在关闭
irc-sendq = 发送队列超限
irc-quit = 退出：{ $text }
irc-ping-timeout = Ping 超时
irc-no-topic = 没有设置话题
irc-no-text = 没有要发送的文字
irc-no-recipient = 没有给出接收者（{ $command }）
irc-no-origin = 没有指定来源
irc-no-motd = 没有今日消息
irc-motd-start = - { $server } 今日消息 -
irc-motd-end = /MOTD 结束
irc-invalid-cap = 无效的 CAP 命令
irc-excess-flood = 发送过快
irc-erroneous-nick = 昵称不合法
irc-end-of-bans = 频道封禁列表结束
irc-end-of-who = WHO 列表结束
irc-end-of-list = /LIST 结束
irc-local-users = 本地用户 { $users } 人，上限 { $max }
irc-global-users = 全部用户 { $users } 人，上限 { $max }
irc-connection-closed = 连接已关闭
irc-closing-link = 连接关闭
irc-cannot-send = 无法发送到频道（你不在其中）
irc-no-nick-change = 不能改昵称：natter 的名字在整个连接期间不变
irc-no-mode-for-others = 不能修改其他用户的模式
irc-isupport = 本服务器支持
irc-lusers-users = 共有 { $users } 位用户，1 台服务器
irc-lusers-ops = 位管理员在线
irc-lusers-channels = 个频道
irc-lusers-me = 本服务器有 { $users } 个客户端
irc-big-room = { $count } 位成员；这么大的房间不显示进出（WHO { $channel } 列出所有人）
irc-logged-in-as = 已登录为
irc-version = natter 聊天服务器
irc-unknown-mode-char = 是未知的模式字符
irc-sasl-already = 你已经认证过了
irc-sasl-aborted = SASL 认证已中止
irc-sasl-mechanisms = 是可用的 SASL 机制
irc-sasl-failed = SASL 认证失败
irc-sasl-logged-in = 你现在以 { $name } 的身份登录
irc-sasl-ok = SASL 认证成功
irc-chathistory-subcommand = 未知的子命令
irc-chathistory-ref = 无效的消息引用
irc-chathistory-limit = 无效的数量
irc-input-too-long = 输入的行太长
