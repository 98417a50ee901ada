"""Data scale (CPU side): wall time and peak RSS of each data step on synthetic corpora of 10k, 50k and 100k documents, the
growth exponent of each step over the sizes, and every step whose time (or memory) grows faster than linearly flagged.

Corpus (one per size, seeded, written under --out): a JSONL file in the `records` layout (id, title, text, lang, domain,
source, license), half Japanese, half English; 85 % inventions (the 15 subdomains of `taxonomy.SUBDOMAIN_BY_KEY`), 15 %
academic abstracts (other domains). Texts are patent / paper abstracts built from templates and a vocabulary (lists
below plus the words of data/samples; each domain uses a seeded part of it), calibrated on the real data in shared/data:
English median ~700 characters (5-95 %: ~420-1,180; USPTO sample: 270-1,060), Japanese ~400 (~240-650; NLP-journal
abstracts: 130-630); character 5-gram Jaccard of two random documents ~0.067 English, ~0.015 Japanese (real: 0.046 and
0.005), a little more alike than real text, so the near-duplicate index sees at least as many candidates as it would. Planted:
2 % near-duplicate documents (a copy of an earlier document with a few words changed, fewer while the character
5-gram Jaccard is under 0.85; the lowest is printed), 0.5 % bad rows (invalid JSON, empty text, text not in its declared language, repeated id: four kinds in turn).
Beside the corpus, the pairs stage 01 would make of it (1 or 2 creativity records per invention, one QA record per
academic abstract, with the fields `deduplicate`, `split_heldout` and `check_leakage` read), 1 % of them a planted copy of
an earlier response (exact, or one word changed).

Steps, each in a fresh subprocess pinned to one core (BLAS on one thread), timed with perf_counter around the call only:
  load             `sources.load_documents(corpus, "records", on_error="skip")`; asserts that exactly the planted bad
                   rows were skipped (count and line numbers)
  near-dup groups  `synthesis.document_groups(docs, 0.8)`; recall of the planted near-duplicate pairs, other merges
  dedup pairs      `synthesis.deduplicate(pairs, 0.8)`; removed vs planted
  split / leakage  `split_heldout(pairs, groups, per_category, seed)` then `check_leakage(train, held, 0.8, groups)`:
                   with heldout_per_category = 10 (seed 001's setting) and with 1 % of the pairs held out
                   (per_category = 1 % of the pairs / number of categories); a leak is reported, not raised
  reference build  `scorer.ReferenceCorpus` of N responses (one per document), as stage 04 builds its pool
  score sample     `PatentQualityScorer(scorer_config(RunConfig()), reference).score(text, ref_id=id)` for a fixed-size
                   sample (--score-sample) of those responses: the time per text against a reference of size N; scoring
                   all N (what stage 04 does) costs N x that, so its exponent is the per-text exponent + 1 (printed)
  qubo             `qubo.solve_team` choosing K of N items (K = 1 % of N by default: keeping a diverse, high-quality
                   subset) from 64-dimensional clustered unit embeddings (`clustered_instance(..., dense=False)`: couplings
                   computed row by row, never an N x N matrix), 10 groups; solver --qubo-solver (swap-anneal: the stage's
                   default, its defaults; greedy: K row evaluations)

Memory per step: the peak RSS (VmHWM, reset through /proc/self/clear_refs just before the call) and its increase over the
RSS just before the call (after the imports and after the step's inputs were read); the RSS after imports alone is in
the JSON. Growth exponents: least-squares slope of log(seconds) and of log(RSS increase) against log(N) over the sizes;
above 1.2 a step is flagged SUPER-LINEAR (a time exponent only when the largest size takes >= 1 s). At small sizes
fixed costs pull the exponents below 1; another process on the machine makes them noisy.

Cost: the three default sizes take about 9 minutes on 2 cores (commit of issue 24: 10k ~1 minute, 100k ~5); peak RSS stays
under 1.7 GB (the pair deduplication at 100k). The near-duplicate index keeps each text as sorted 64-bit shingle hashes (~8 KB
per document), and swap-anneal scans unchosen items in chunks of 4,096 (never a K x N block). The corpora of one size
take ~0.4 GB of disk per 100k documents (removed after that size unless --out is given).

    .venv/bin/python bench/scale.py                       # 10k, 50k, 100k documents (about 9 minutes)
    .venv/bin/python bench/scale.py --quick               # 1k, 2k, 4k: a smoke run of a few minutes
    .venv/bin/python bench/scale.py --sizes 10000 --json /tmp/scale.json --out /tmp/scale
"""
import os
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"): os.environ[_v] = "1"  # before numpy is imported

import argparse, gc, json, math, random, re, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path

THRESHOLD = 0.8  # near_dup_threshold (stage 01's default)
SUPER_LINEAR = 1.2
MIN_SECONDS, MIN_MB = 1.0, 10.0  # a time exponent is only flagged when the largest size takes this long; no RSS exponent below MIN_MB

# ---------------------------------------------------------------- vocabulary
EN_ADJ = """flexible rigid porous conductive transparent annular elongated hollow cylindrical planar curved detachable adjustable
modular compact lightweight insulating magnetic optical thermal acoustic resilient sealed movable rotatable stationary lateral
vertical horizontal inner outer upper lower primary secondary auxiliary tapered threaded perforated layered composite hydrophobic
biodegradable wireless portable inflatable collapsible translucent reflective absorbent elastic ceramic metallic polymeric fibrous
granular cooled heated pressurized variable redundant distributed integrated embedded programmable digital analog adaptive passive
active disposable reusable waterproof flameproof corrosion-resistant low-friction high-voltage low-power self-cleaning""".split()
EN_MOD = """pressure temperature signal heat fluid image light power voltage current data network memory battery motor gear spring
valve pump filter lens laser sensor cable frame panel door wheel brake engine fuel air water oil gas steam vapor dust noise
vibration torque speed position angle distance flow level charge field wave frequency phase pulse beam coil plate shaft bearing
seal joint hinge clamp bracket nozzle chamber tank pipe tube duct channel port terminal electrode substrate film layer coating
membrane fiber resin powder crystal wafer chip circuit antenna display camera screen keyboard handle blade cutter grinder mixer
dryer heater cooler fan compressor turbine rotor stator piston cylinder lever pulley belt chain rail track cart tray container
bottle cap lid package label sheet roll strip wire mesh grid cell module block patient tissue catheter implant drug dose enzyme
protein culture seed soil crop grain milk meat fruit vehicle engine tire seat steering cabin wing hull concrete beam column brick
roof window floor wall insulation solar wind hydrogen lithium anode cathode inverter transformer router packet protocol server
query cache kernel thread pixel sensor photon prism mirror shutter tripod antenna modem carrier spectrum""".split()
EN_HEAD = """assembly device apparatus system unit module member element portion section mechanism arrangement structure housing body
frame circuit controller processor interface actuator detector generator converter regulator adapter connector holder support
guide cover casing base plate layer chamber compartment receptacle cartridge sleeve collar ring disk rod bar arm link bracket
mount station platform network array matrix stack bundle assembly kit tool instrument probe monitor analyzer dispenser applicator
manifold reservoir""".split()
EN_VERB = """detect measure adjust rotate connect couple attach transmit receive convert control regulate monitor store supply
discharge heat cool compress expand filter separate mix align position engage release lock unlock guide support seal clamp press
lift lower tilt slide insert extract deliver absorb reflect generate process calculate estimate determine select display record
stream encode decode charge drain pump deform fold stretch coat deposit etch bond weld polish clean sterilize inspect illuminate
amplify attenuate synchronize calibrate dissipate circulate dispense inject evaporate condense ventilate""".split()
EN_PREFIX = "thermo electro hydro micro nano photo bio magneto piezo opto aero cryo ultra multi poly semi inter sub super geo".split()
EN_PREP = "on in within around above below behind beside along adjacent to between inside".split(" ")
EN_UNIT = "mm cm m kg g V W Hz kHz °C % ms s MPa kPa rpm ml".split()
EN_FIELDS = "computational linguistics|machine translation|materials informatics|clinical imaging|renewable energy systems|science education|food processing|human-computer interaction".split("|")

JA_WORD = """温度 圧力 信号 電圧 電流 流体 画像 光源 電力 電池 磁場 振動 回転 位置 角度 距離 流量 水位 速度 周波 位相 基板 薄膜 電極 樹脂
繊維 粉末 結晶 回路 端子 配線 筐体 容器 蓋体 弁体 軸受 歯車 発熱 冷却 加熱 送風 排気 吸気 燃料 排水 給水 空気 酸素 窒素 水素 炭素 金属
合金 触媒 溶液 溶媒 塗膜 表面 内面 外周 端部 側面 底面 上面 下部 中心 開口 通路 空間 領域 外部 内部 制御 検出 測定 演算 記憶 通信 表示
入力 出力 判定 変換 補正 調整 供給 排出 保持 固定 接続 支持 案内 移動 搬送 収容 装着 着脱 密閉 遮光 反射 透過 吸収 放射 照射 撮像 認識
推定 学習 予測 診断 治療 投与 培養 発酵 栽培 収穫 包装 洗浄 乾燥 粉砕 混合 分離 濾過 圧縮 膨張 成形 切断 研磨 溶接 接合 積層 印刷 塗布
蒸着 車両 車輪 座席 操舵 船体 翼面 建物 屋根 窓枠 床面 壁面 柱材 梁材 患者 血液 組織 細胞 薬剤 酵素 蛋白 種子 土壌 作物 穀物 果実 食肉
乳製 音声 文書 単語 文脈 翻訳 要約 質問 回答 教材 学生 教員 利用 端末 画素 光子 鏡面 焦点 波長 帯域 搬送 変調 復調 暗号 符号 認証""".split()
JA_SUFFIX = "部 装置 手段 機構 層 体 材 器 板 室 回路 素子 ユニット システム 機 面 膜 管 部材 要素".split()
JA_KATA = """センサ モータ フィルタ バッテリ ポンプ バルブ ノズル レンズ カメラ ディスプレイ コントローラ プロセッサ メモリ アンテナ
ケーブル コネクタ ハウジング フレーム パネル ブラケット シャフト ギア スプリング ピストン シリンダ ロータ ステータ タンク チャンバ
ダクト チューブ パイプ フィルム シート コーティング ポリマー セラミック ガラス ゴム シリコーン ヒータ ファン コンプレッサ タービン
インバータ サーバ ルータ パケット キャッシュ カテーテル インプラント トレイ ラベル ワイヤ メッシュ モジュール""".split()
JA_VS = """検出 制御 供給 変換 接続 配置 固定 保持 回転 移動 加熱 冷却 測定 調整 記憶 送信 受信 表示 判定 算出 生成 形成 除去 抑制
低減 向上 照射 撮像 搬送 収容 排出 圧縮 混合 分離 洗浄 乾燥 補正 推定 解析 評価 分類 抽出 学習 予測""".split()
JA_UNIT = "mm cm kg V W Hz °C % ms 秒 倍 層 個".split()
ACADEMIC_DOMAINS = ["natural_language_processing", "materials_science", "medicine_life_science", "energy_systems", "education", "food_science"]


def _third(v: str) -> str:
    if v.endswith(("s", "sh", "ch", "x", "z")): return v + "es"
    return v[:-1] + "ies" if v.endswith("y") and v[-2] not in "aeiou" else v + "s"

def _past(v: str) -> str:
    if v.endswith("e"): return v + "d"
    return v[:-1] + "ied" if v.endswith("y") and v[-2] not in "aeiou" else v + "ed"

def _ing(v: str) -> str: return (v[:-1] if v.endswith("e") and not v.endswith("ee") else v) + "ing"


def sample_words() -> tuple[list[str], list[str], list[str]]:
    "Words of the shipped sample corpus (data/samples): English words, Japanese kanji runs, katakana words."
    from creativity_llm.sources import load_samples
    docs = load_samples("all")
    en = " ".join(f"{d.title} {d.text}" for d in docs if d.lang == "en").lower()
    ja = "".join(f"{d.title}{d.text}" for d in docs if d.lang == "ja")
    return (sorted(set(re.findall(r"\b[a-z]{4,}\b", en)) - set(EN_HEAD)), sorted(set(re.findall(r"[\u4e00-\u9fff]{2,4}", ja))),
            sorted(set(re.findall(r"[ァ-ヴー]{3,}", ja))))


class Vocabulary:
    "Per-domain word pools (a domain uses a seeded part of each list: same-domain texts share more words, as real ones do)."
    def __init__(self, rng: random.Random, domain: str, extra: tuple[list[str], list[str], list[str]]):
        pick = lambda xs, f: rng.sample(xs, max(8, int(len(xs) * f)))
        self.adj, self.head, self.verb = pick(EN_ADJ, 0.7), pick(EN_HEAD, 0.7), pick(EN_VERB, 0.7)
        self.mod = pick(EN_MOD, 0.6) + [p + m for p in EN_PREFIX for m in pick(EN_MOD, 0.05)] + pick(extra[0], 0.5)  # + microvalve, thermoresin, ...
        self.jword, self.jsuf, self.jvs = pick(JA_WORD, 0.6) + pick(extra[1], 0.5), pick(JA_SUFFIX, 0.7), pick(JA_VS, 0.7)
        self.jkata = pick(JA_KATA, 0.7) + pick(extra[2], 0.7)
        self.domain = domain


class TextMaker:
    "Abstracts, titles, idea lists and QA pairs in English and Japanese from templates and a domain's vocabulary."
    def __init__(self, rng: random.Random):
        self.r = rng

    # English pieces
    def np(self, v, article: str = "") -> str:
        r = self.r
        words = ([r.choice(v.adj)] if r.random() < 0.3 else []) + [r.choice(v.mod) for _ in range(r.choice((0, 1, 1, 1, 2)))]
        words.append(r.choice(v.head) if r.random() < 0.4 else r.choice(v.mod))
        s = " ".join(words)
        if article == "a": return ("an " if s[0] in "aeiou" else "a ") + s
        return f"{article} {s}" if article else s

    def en_fill(self, tpl: str, v) -> str:
        r = self.r
        subs = {"A": lambda: self.np(v, "a"), "THE": lambda: self.np(v, "the"), "NP": lambda: self.np(v), "ADJ": lambda: r.choice(v.adj),
                "MOD": lambda: r.choice(v.mod), "V": lambda: r.choice(v.verb), "V3": lambda: _third(r.choice(v.verb)),
                "VPP": lambda: _past(r.choice(v.verb)), "VING": lambda: _ing(r.choice(v.verb)), "PREP": lambda: r.choice(EN_PREP),
                "NUM": lambda: str(r.choice([r.randint(2, 99), r.randint(100, 950), round(r.uniform(0.1, 9.9), 1)])),
                "INT": lambda: str(r.randint(2, 12)), "UNIT": lambda: r.choice(EN_UNIT), "FIELD": lambda: r.choice(EN_FIELDS)}
        return re.sub(r"\{(\w+)\}", lambda m: subs[m.group(1)](), tpl)

    EN_OPEN = ["{A} for {VING} {A} is disclosed.", "The present invention relates to {A} and, more particularly, to {A} that {V3} {A}.",
               "Disclosed is a method of {VING} {A} using {A}.", "{A} includes {A}, {A} {VPP} to {THE}, and {A} disposed {PREP} {THE}.",
               "An object is to provide {A} that can {V} {THE} without {VING} {THE}."]
    EN_BODY = ["{THE} {V3} {THE} based on {A} received from {THE}.", "When {THE} {V3} {A}, {THE} {V3} {THE} so that {THE} is {VPP}.",
               "{THE} is {VPP} {PREP} {THE} and is {VPP} by {A}.", "{A} having a thickness of {NUM} {UNIT} is {VPP} between {THE} and {THE}.",
               "{THE} may be {VPP} at a rate of {NUM} {UNIT} to {V} {THE}.", "Each {NP} comprises {A} and {A} configured to {V} {THE}.",
               "In one embodiment, {THE} {V3} {THE} within {NUM} {UNIT}.", "The method further comprises {VING} {THE} and {VING} {THE} to {THE}.",
               "{THE} is {VPP} to {THE} by {A}, and {THE} {V3} {THE} when {THE} exceeds {NUM} {UNIT}.",
               "A plurality of {MOD} {NP}s are arranged {PREP} {THE} at intervals of {NUM} {UNIT}.",
               "{A} {V3} {THE} while {A} {V3} {THE}.", "Optionally, {A} or {A} {V3} {THE}.", "{THE}, {THE} and {THE} are {VPP} together.",
               "{MOD} {NP}s {V} {THE} via {A}.", "Upon {VING} {THE}, {THE} {V3} {A}.", "{THE} has {A}, {A}, and {A}.",
               "Also provided are {MOD} {NP}s and {MOD} {NP}s.", "{THE} includes at least {INT} {MOD} {NP}s.",
               "{THE} {V3} {THE}; {THE} {V3} {THE}.", "{A} is {VPP} from {THE} through {A} into {THE}."]
    EN_EFFECT = ["Accordingly, {THE} can be {VPP} with {A}, which reduces {MOD} loss.",
                 "As a result, {MOD} consumption is reduced by about {NUM}% compared with a conventional {NP}.",
                 "This allows {THE} to {V} {THE} without {VING} {THE}.", "Thus, {THE} is {VPP} reliably even when {THE} is {VPP}."]
    EN_ACAD = ["This study proposes {A} for {VING} {MOD} data in {FIELD}.", "We evaluate {THE} on {INT}00 {MOD} samples and show that it improves accuracy by {NUM}%.",
               "Experiments with {INT}0 participants indicate that {THE} {V3} {THE} more reliably than a baseline {NP}.",
               "The purpose of this work is to determine whether {A} can {V} {THE} in {FIELD}.",
               "We further analyse how {THE} {V3} {THE}, and discuss the limitations of {THE}.",
               "Results show that {MOD} error decreased from {NUM}% to {NUM}% when {THE} was {VPP}.",
               "{MOD} {NP}s are rarely {VPP} in {FIELD}.", "Prior work {V3} {THE} but ignores {MOD} {NP}s.", "Our {NP} {V3} {MOD} {NP}s jointly.",
               "Ablations reveal that {THE} matters most.", "{A} trained on {MOD} {NP}s {V3} {THE}.", "Compared with {A}, {THE} is {VPP} {INT} times faster.",
               "Code and {MOD} {NP}s are released."]
    EN_ACAD_OPEN, EN_ACAD_END = (0, 3, 6, 7), (1, 2, 5, 11, 12)

    def en_text(self, v, target: int, academic: bool) -> str:
        r, out = self.r, []
        out.append(self.en_fill(self.EN_ACAD[r.choice(self.EN_ACAD_OPEN)] if academic else r.choice(self.EN_OPEN), v))
        body = self.EN_ACAD if academic else self.EN_BODY
        while sum(map(len, out)) + len(out) < target - 120:
            out.append(self.en_fill(r.choice(body), v))
        out.append(self.en_fill(self.EN_ACAD[r.choice(self.EN_ACAD_END)] if academic else r.choice(self.EN_EFFECT), v))
        return " ".join(out)

    # Japanese pieces
    def jnp(self, v) -> str:
        r = self.r
        k = r.random()
        if k < 0.55: return r.choice(v.jword) + (r.choice(v.jword) if r.random() < 0.5 else "") + r.choice(v.jsuf)
        if k < 0.8: return r.choice(v.jword) + r.choice(v.jkata)
        return r.choice(v.jkata)

    def ja_fill(self, tpl: str, v) -> str:
        r = self.r
        subs = {"N": lambda: self.jnp(v), "VS": lambda: r.choice(v.jvs), "W": lambda: r.choice(v.jword),
                "NUM": lambda: str(r.choice([r.randint(2, 99), r.randint(100, 950), round(r.uniform(0.1, 9.9), 1)])), "UNIT": lambda: r.choice(JA_UNIT),
                "INT": lambda: str(r.randint(12, 3000))}
        return re.sub(r"\{(\w+)\}", lambda m: subs[m.group(1)](), tpl)

    JA_OPEN = ["【課題】{N}の{W}を{VS}し、{N}を{VS}できる{N}を提供する。", "本発明は、{N}に関し、特に{N}を{VS}する{N}に関する。",
               "【課題】{N}を{VS}することなく、{N}の{W}を{VS}可能な{N}を提供する。"]
    JA_BODY = ["【解決手段】{N}は、{N}と、{N}に接続された{N}と、{N}を{VS}する{N}とを備える。", "{N}は、{N}からの{W}信号に基づいて{N}を{VS}する。",
               "{N}が{N}を{VS}すると、{N}は{N}を{VS}し、{N}の{W}を{VS}させる。", "{N}の厚さは{NUM}{UNIT}であり、{N}と{N}との間に配置される。",
               "{N}は{N}の{W}側に設けられ、{N}によって{VS}される。", "{N}には、{NUM}{UNIT}間隔で複数の{N}が形成されている。",
               "{N}の{W}が{NUM}{UNIT}を超えると、{N}が{N}を{VS}する。", "{N}、{N}及び{N}を{VS}する。", "{N}で{N}を{VS}し、{N}へ送る。",
               "{W}{W}用の{N}を{N}内に{VS}した。", "{N}又は{N}により{W}{W}を{VS}する。", "{N}を{INT}個の{N}に分け、各{N}を{VS}する。",
               "{W}時には{N}が{W}{W}を{VS}。", "{N}付きの{N}を{W}{W}へ{VS}できる。"]
    JA_EFFECT = ["これにより、{N}を{VS}することなく{N}を{VS}することができる。", "その結果、{N}の{W}を約{NUM}%{VS}できる。",
                 "したがって、{N}が{VS}された場合でも{N}を確実に{VS}できる。", "{W}{W}が容易になる。", "{N}の{W}{W}を抑えられる。"]
    JA_ACAD = ["本論文では、{N}を用いた{W}{W}の{VS}手法を提案する。", "{INT}件の{N}を対象に評価実験を行った結果、{W}精度が{NUM}%向上することを確認した。",
               "また、{N}と{N}の関係を分析し、提案手法の有効性を示した。", "本研究の目的は、{N}が{N}の{VS}に与える影響を明らかにすることである。",
               "従来の{N}では{W}の{VS}が困難であるという問題がある。", "{N}の{W}誤差は{NUM}%から{NUM}%に減少した。", "{W}{W}では{N}が{W}されにくい。",
               "{N}と{N}を組み合わせ、{W}{W}を{VS}した。", "{W}{W}の{N}を新たに構築した。", "{N}は{N}より{INT}倍速い。", "{W}{W}への応用も議論する。"]
    JA_ACAD_OPEN, JA_ACAD_END = (0, 3, 4, 6), (1, 2, 5, 9, 10)

    def ja_text(self, v, target: int, academic: bool) -> str:
        r, out = self.r, []
        out.append(self.ja_fill(self.JA_ACAD[r.choice(self.JA_ACAD_OPEN)] if academic else r.choice(self.JA_OPEN), v))
        body = self.JA_ACAD if academic else self.JA_BODY
        while sum(map(len, out)) < target - 40:
            out.append(self.ja_fill(r.choice(body), v))
        out.append(self.ja_fill(self.JA_ACAD[r.choice(self.JA_ACAD_END)] if academic else r.choice(self.JA_EFFECT), v))
        return "".join(out)

    def title(self, v, lang: str) -> str:
        return self.ja_fill("{N}及び{N}", v) if lang == "ja" else self.en_fill("{NP} and method for {VING} {A}", v).capitalize()

    # stage 01's outputs
    EN_IDEA = ["Use {A} to {V} {THE} when {THE} exceeds {NUM} {UNIT}.", "Replace {THE} with {A} so that {THE} is {VPP} faster.",
               "Combine {THE} with {A} to {V} {MOD} {NP}s for elderly users.", "Add {A} that {V3} {THE} and {V3} {THE}.",
               "Make {THE} from {ADJ} {MOD} so that it can {V} {THE} in wet conditions.",
               "Attach {A} to {THE}, which lets {THE} {V} {THE} without {VING} {THE}."]
    JA_IDEA = ["{N}を用いて{N}を{VS}する。", "{N}を{N}に置き換え、{N}を{VS}しやすくする。", "{N}と{N}を組み合わせて{N}を{VS}する。",
               "{N}が{NUM}{UNIT}を超えたときに{N}を{VS}する{N}を追加する。", "{N}を{W}材で作り、{N}の{VS}を容易にする。"]

    def ideas(self, v, lang: str) -> str:
        r, tpl = self.r, self.JA_IDEA if lang == "ja" else self.EN_IDEA
        fill = self.ja_fill if lang == "ja" else self.en_fill
        return "\n".join(f"{i}. {fill(r.choice(tpl), v)}" for i in range(1, r.randint(3, 5) + 1))

    def qa(self, v, lang: str) -> tuple[str, str]:
        r = self.r
        if lang == "ja":
            return r.choice([(self.ja_fill("{N}は何を{VS}しますか？", v), self.ja_fill("{N}を{VS}します。", v)),
                             (self.ja_fill("{N}の評価には何件のデータを用いましたか？", v), self.ja_fill("{INT}件の{N}です。", v)),
                             (self.ja_fill("なぜ{N}を{VS}するのですか？", v), self.ja_fill("{N}の{W}を{VS}するためです。", v))])
        return r.choice([(self.en_fill("What does {THE} {V}?", v), self.en_fill("It {V3} {THE} by {VING} {THE}.", v)),
                         (self.en_fill("How many {MOD} samples were used to evaluate {THE}?", v), self.en_fill("{INT}0 samples of {NP}.", v)),
                         (self.en_fill("Why is {THE} {VPP} before {THE}?", v), self.en_fill("To {V} {THE} without {VING} {THE}.", v))])

    def edit(self, text: str, lang: str, v, k: int) -> str:
        "`text` with k words replaced by others of the vocabulary."
        r = self.r
        if lang == "ja":
            spans = [m.span() for m in re.finditer("|".join(sorted(set(v.jword), key=len, reverse=True)), text)]
            new = lambda: r.choice(v.jword)
        else:
            spans = [m.span() for m in re.finditer(r"\b[a-z]{5,}\b", text)]
            new = lambda: r.choice(v.mod + v.adj)
        for a, b in sorted(r.sample(spans, min(k, len(spans))), reverse=True):
            text = text[:a] + new() + text[b:]
        return text


# ---------------------------------------------------------------- corpus
def make_corpus(n: int, d: Path, seed: int) -> dict:
    "Write corpus.jsonl (with the bad rows), docs.jsonl (what loading it must give), pairs.jsonl and truth.json under d."
    from creativity_llm.taxonomy import CATEGORIES, LEHNERT_CATEGORIES, SUBDOMAIN_BY_KEY
    from creativity_llm.synthesis import jaccard, shingles
    rng = random.Random(seed * 1_000_003 + n)
    tm = TextMaker(rng)
    domains = list(SUBDOMAIN_BY_KEY)
    extra = sample_words()
    vocab = {dom: Vocabulary(random.Random(f"{seed}/{dom}"), dom, extra) for dom in domains + ACADEMIC_DOMAINS}
    cats, lehnert = [c.key for c in CATEGORIES], list(LEHNERT_CATEGORIES)
    n_dup, n_bad = round(0.02 * n), round(0.005 * n)
    dup_at = set(rng.sample(range(n // 10, n), n_dup))  # copies come after the first tenth, each of an earlier original
    docs, near_dups, originals = [], [], set()
    for i in range(n):
        if i in dup_at:
            while True:
                j = rng.randrange(i)
                if j not in dup_at and j not in originals: break
            src = docs[j]
            v = vocab[src["domain"]]
            for k in range(max(1, len(src["text"]) // (90 if src["lang"] == "ja" else 200)), 0, -1):
                text = tm.edit(src["text"], src["lang"], v, k)
                jac = jaccard(shingles(text), shingles(src["text"]))
                if jac >= 0.85 and text != src["text"]: break
            originals.add(j)
            near_dups.append([f"doc{i:06d}", src["id"], round(jac, 4)])
            docs.append({**src, "id": f"doc{i:06d}", "text": text})
            continue
        lang = "ja" if i % 2 else "en"
        academic = rng.random() < 0.15
        dom = rng.choice(ACADEMIC_DOMAINS if academic else domains)
        v = vocab[dom]
        if lang == "en": target = int(min(1500, max(280, rng.lognormvariate(math.log(650), 0.33))))
        else: target = int(min(650, max(150, rng.lognormvariate(math.log(390), 0.3))))
        text = tm.ja_text(v, target, academic) if lang == "ja" else tm.en_text(v, target, academic)
        docs.append({"id": f"doc{i:06d}", "title": tm.title(v, lang), "text": text, "lang": lang, "domain": dom,
                     "source": "synthetic (bench/scale.py)", "license": "CC0-1.0"})
    # bad rows, one extra line each, four kinds in turn
    bad_after = sorted(rng.sample(range(n), n_bad))
    lines, bad_lines, b = [], [], 0
    bad_kinds = {"invalid_json": 0, "empty_text": 0, "wrong_language": 0, "repeated_id": 0}
    for i, doc in enumerate(docs):
        lines.append(json.dumps(doc, ensure_ascii=False))
        while b < len(bad_after) and bad_after[b] == i:
            kind = list(bad_kinds)[b % 4]
            other = docs[rng.randrange(i + 1)]
            if kind == "invalid_json": row = (row := json.dumps({**other, "id": f"bad{b:05d}"}, ensure_ascii=False))[: len(row) // 2]  # cut short
            elif kind == "empty_text": row = json.dumps({**other, "id": f"bad{b:05d}", "text": "  "}, ensure_ascii=False)
            elif kind == "wrong_language": row = json.dumps({**other, "id": f"bad{b:05d}", "lang": "en" if other["lang"] == "ja" else "ja"}, ensure_ascii=False)
            else: row = json.dumps({**other, "text": other["text"][::-1]}, ensure_ascii=False)  # the id of an earlier good row
            lines.append(row); bad_lines.append(len(lines)); bad_kinds[kind] += 1; b += 1
    (d / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open(d / "docs.jsonl", "w", encoding="utf-8") as f:
        for doc in docs: f.write(json.dumps({**doc, "group": ""}, ensure_ascii=False) + "\n")
    # stage 01's pairs
    pairs, n_dup_resp = [], 0
    pair_text = lambda r: shingles(f"{r['question']}\n{r['response']}")
    for i, doc in enumerate(docs):
        v, lang = vocab[doc["domain"]], doc["lang"]
        if doc["domain"] in SUBDOMAIN_BY_KEY:
            new = []
            for k in range(rng.randint(1, 2)):
                cat = cats[(i + k) % len(cats)]
                new.append({"id": f"{doc['id']}/{cat}", "task": "creativity", "source_id": doc["id"], "lang": lang, "category": cat,
                            "subdomain": doc["domain"], "lehnert_category": "", "question": "", "response": tm.ideas(v, lang), "input": doc["text"]})
        else:
            q, a = tm.qa(v, lang)
            new = [{"id": f"{doc['id']}/qa0", "task": "qa", "source_id": doc["id"], "lang": lang, "category": "", "subdomain": "",
                    "lehnert_category": rng.choice(lehnert), "question": q, "response": a, "input": f"{doc['text']}\n{q}"}]
        for p in new:
            if rng.random() < 0.01 and (earlier := [x for x in pairs[-200:] if x["task"] == p["task"] and x["lang"] == lang]):
                # about 1 % of the pairs repeat an earlier pair's response (and question)
                src = rng.choice(earlier)
                p.update(question=src["question"], response=src["response"])
                if rng.random() < 0.5:  # one word changed, if that keeps it a near-duplicate
                    edited = {**p, "response": tm.edit(src["response"], lang, v, 1)}
                    if jaccard(pair_text(edited), pair_text(src)) >= 0.85: p = edited
                n_dup_resp += 1
            pairs.append(p)
    with open(d / "pairs.jsonl", "w", encoding="utf-8") as f:
        for p in pairs: f.write(json.dumps(p, ensure_ascii=False) + "\n")
    truth = {"docs": n, "lines": len(lines), "bad_rows": len(bad_lines), "bad_lines": bad_lines, "bad_kinds": bad_kinds,
             "near_dups": near_dups, "pairs": len(pairs), "dup_responses": n_dup_resp,
             "chars": {lang: sum(len(x["text"]) for x in docs if x["lang"] == lang) / max(1, sum(x["lang"] == lang for x in docs)) for lang in ("en", "ja")}}
    (d / "truth.json").write_text(json.dumps(truth))
    return truth


# ---------------------------------------------------------------- measuring (child side)
def status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":")) / 1024


def reset_peak() -> bool:
    "Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."
    try:
        with open("/proc/self/clear_refs", "w") as f: f.write("5")
        return True
    except OSError: return False


class Meter:
    "Times one call and reads its peak RSS; the parts of one step go to the parent as JSON."
    def __init__(self): self.parts, self.rss_imports = [], None
    def imported(self): self.rss_imports = status_mb("VmRSS")

    def run(self, name: str, fn, *a, **kw):
        gc.collect()
        before = status_mb("VmRSS"); reset = reset_peak()
        t0 = time.perf_counter(); out = fn(*a, **kw); dt = time.perf_counter() - t0
        peak = status_mb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        part = {"part": name, "seconds": dt, "peak_mb": peak, "rss_before_mb": before, "increase_mb": peak - before,
                "rss_imports_mb": self.rss_imports, "peak_reset": reset, "note": ""}
        self.parts.append(part)
        return out, part


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f: return [json.loads(l) for l in f if l.strip()]


def step_load(d: Path, truth: dict, args, m: Meter):
    from creativity_llm.sources import load_documents
    m.imported()
    res, part = m.run("load", load_documents, d / "corpus.jsonl", "records", on_error="skip")
    lines = sorted(int(b.where.rsplit(":", 1)[1]) for b in res.skipped)
    part["note"] = f"{len(res.docs)} docs; skipped {len(res.skipped)} rows, planted {truth['bad_rows']}"
    assert len(res.skipped) == truth["bad_rows"], f"skipped {len(res.skipped)} rows, planted {truth['bad_rows']}: {[str(b) for b in res.skipped[:5]]}"
    assert lines == truth["bad_lines"], f"skipped lines {lines[:10]} are not the planted {truth['bad_lines'][:10]}"
    assert len(res.docs) == truth["docs"], f"{len(res.docs)} documents loaded, {truth['docs']} expected"


def step_groups(d: Path, truth: dict, args, m: Meter):
    from creativity_llm.sources import Document
    from creativity_llm.synthesis import document_groups
    m.imported()
    docs = [Document(**r) for r in read_jsonl(d / "docs.jsonl")]
    groups, part = m.run("near-dup groups", document_groups, docs, THRESHOLD)
    found = sum(groups[a] == groups[b] for a, b, _ in truth["near_dups"])
    merged = len(docs) - len(set(groups.values()))
    part["recall"] = found / max(1, len(truth["near_dups"]))
    part["note"] = (f"{part['increase_mb'] * 1024 / len(docs):.0f} KB/doc; recall {part['recall']:.3f} ({found}/{len(truth['near_dups'])} planted pairs, min Jaccard "
                    f"{min((j for *_, j in truth['near_dups']), default=1):.2f}); {merged - found} other merges")
    (d / "groups.json").write_text(json.dumps(groups))


def step_dedup(d: Path, truth: dict, args, m: Meter):
    from creativity_llm.synthesis import deduplicate
    m.imported()
    pairs = read_jsonl(d / "pairs.jsonl")
    (kept, removed), part = m.run("dedup pairs", deduplicate, pairs, THRESHOLD)
    part["note"] = f"{len(pairs)} pairs, {part['increase_mb'] * 1024 / len(pairs):.0f} KB/pair; removed {removed}, planted {truth['dup_responses']}"
    (d / "kept.json").write_text(json.dumps([r["id"] for r in kept]))


def step_split(d: Path, truth: dict, args, m: Meter, proportional: bool):
    from creativity_llm.synthesis import LeakageError, category_of, check_leakage, split_heldout
    m.imported()
    keep = set(json.loads((d / "kept.json").read_text()))
    pairs = [r for r in read_jsonl(d / "pairs.jsonl") if r["id"] in keep]
    groups = json.loads((d / "groups.json").read_text())
    n_cats = len({category_of(r) for r in pairs})
    per_cat = max(1, round(0.01 * len(pairs) / n_cats)) if proportional else 10
    tag = "1%" if proportional else "10/cat"
    (train, held), part = m.run(f"split ({tag})", split_heldout, pairs, groups, per_cat, args.seed)
    part["note"] = f"per_category {per_cat}: {len(train)} train, {len(held)} held out"

    def leakage():
        try: return check_leakage(train, held, THRESHOLD, groups)
        except LeakageError as e: return e
    res, part = m.run(f"leakage ({tag})", leakage)
    part["note"] = f"held {len(held)}, queries {len(train)} x 2 fields; " + (f"LEAK: {str(res)[:160]}" if isinstance(res, Exception) else "no leak")
    part["leak"] = isinstance(res, Exception)


def step_score(d: Path, truth: dict, args, m: Meter):
    from creativity_llm.pipeline import RunConfig
    from creativity_llm.scorer import PatentQualityScorer, ReferenceCorpus, _cached_content_words, clear_caches, content_words, scorer_config
    content_words("warm-up: MeCab loads its dictionary once"); content_words("辞書を読み込む"); clear_caches()  # a fixed cost, not timed
    m.imported()
    first = {}
    for r in read_jsonl(d / "pairs.jsonl"): first.setdefault(r["source_id"], r)
    texts, ids = [r["response"] for r in first.values()], [r["id"] for r in first.values()]
    ref, part = m.run("reference build", ReferenceCorpus, texts, ids)
    part["note"] = f"{len(texts)} responses, {len(ref.df)} words"
    scorer = PatentQualityScorer(scorer_config(RunConfig()), ref)
    sample = random.Random(args.seed).sample(range(len(texts)), min(args.score_sample, len(texts)))
    c0 = _cached_content_words.cache_info()
    scores, part = m.run("score sample", lambda: [scorer.score(texts[i], ref_id=ids[i]) for i in sample])
    c1 = _cached_content_words.cache_info()
    hits, misses = c1.hits - c0.hits, c1.misses - c0.misses
    part["per_text_ms"] = part["seconds"] / len(sample) * 1e3
    part["sample"] = len(sample)
    part["note"] = (f"{len(sample)} texts, {part['per_text_ms']:.2f} ms/text (all {len(texts)}: {part['per_text_ms'] * len(texts) / 1e3:.0f} s); "
                    f"word cache hits {hits / max(1, hits + misses):.0%}; originality {scorer.config.originality}")


def step_qubo(d: Path, truth: dict, args, m: Meter):
    from creativity_llm.qubo import clustered_instance, solve_team
    m.imported()
    n = truth["docs"]
    K = max(2, round(n * float(args.qubo_k[:-1]) / 100)) if args.qubo_k.endswith("%") else int(args.qubo_k)
    p = clustered_instance(n, K, args.seed, n_groups=10, dim=64, clusters=32, dense=False)
    kw = {"time_limit_s": args.qubo_time_limit} if args.qubo_time_limit and args.qubo_solver == "swap-anneal" else {}
    team, part = m.run(f"qubo {args.qubo_solver}", solve_team, p, args.qubo_solver, seed=args.seed, **kw)
    part["note"] = (f"K={K} of {n}, 64-dim embeddings, energy {team.energy:.4f}, {'feasible' if team.feasible else 'INFEASIBLE'}"
                    + (f", {team.info['kicks']} kicks" if "kicks" in team.info else "") + (f", time limit {args.qubo_time_limit} s" if kw else ""))


STEPS = {"load": step_load, "groups": step_groups, "dedup": step_dedup, "split10": lambda *a: step_split(*a, proportional=False),
         "split1pct": lambda *a: step_split(*a, proportional=True), "score": step_score, "qubo": step_qubo}
NEEDS = {"groups": [], "dedup": [], "split10": ["groups", "dedup"], "split1pct": ["groups", "dedup"], "load": [], "score": [], "qubo": []}


def child(args):
    if hasattr(os, "sched_setaffinity"): os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    d = Path(args.dir)
    m = Meter()
    STEPS[args.child](d, json.loads((d / "truth.json").read_text()), args, m)
    print(json.dumps(m.parts))


# ---------------------------------------------------------------- parent
def slope(xs, ys):
    "Least-squares slope of log(y) on log(x); None with fewer than two usable points."
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if y is not None and y > 0]
    if len(pts) < 2: return None
    mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def run_child(step: str, d: Path, args) -> tuple[list[dict] | None, str]:
    cmd = [sys.executable, __file__, "--child", step, "--dir", str(d), "--seed", str(args.seed), "--score-sample", str(args.score_sample),
           "--qubo-k", args.qubo_k, "--qubo-solver", args.qubo_solver] + (["--qubo-time-limit", str(args.qubo_time_limit)] if args.qubo_time_limit else [])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.step_timeout, env={**os.environ, "PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1"})
    except subprocess.TimeoutExpired:
        return None, f"timed out after {args.step_timeout} s"
    if r.returncode:
        return None, (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1][:300]
    return json.loads(r.stdout.strip().splitlines()[-1]), ""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,50000,100000", help="documents per corpus, comma-separated")
    ap.add_argument("--quick", action="store_true", help="sizes 1000,2000,4000 (smoke run)")
    ap.add_argument("--out", help="folder for the generated corpora (default: a temporary folder, removed at the end)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", default=",".join(STEPS), help=f"steps to run, comma-separated (of {','.join(STEPS)})")
    ap.add_argument("--score-sample", type=int, default=2000, help="texts scored against the size-N reference")
    ap.add_argument("--qubo-k", default="1%", help="subset size K: a percentage of N ('1%%') or a number")
    ap.add_argument("--qubo-solver", default="swap-anneal", choices=["swap-anneal", "greedy"])
    ap.add_argument("--qubo-time-limit", type=float, default=None, help="seconds for swap-anneal (default: none, its patience stop)")
    ap.add_argument("--step-timeout", type=int, default=3600, help="seconds before a step's subprocess is stopped")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--child", choices=list(STEPS), help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child: return child(args)
    sizes = [1000, 2000, 4000] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    steps = [s for s in args.steps.split(",") if s]
    unknown = set(steps) - set(STEPS)
    if unknown: ap.error(f"unknown steps {sorted(unknown)}")
    tmp = None
    if args.out: root = Path(args.out); root.mkdir(parents=True, exist_ok=True)
    else: tmp = tempfile.TemporaryDirectory(prefix="scale-"); root = Path(tmp.name)
    rows, failures, corpora = [], [], {}
    for n in sizes:
        d = root / f"n{n}"; d.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        truth = make_corpus(n, d, args.seed)
        corpora[n] = {k: truth[k] for k in ("docs", "lines", "bad_rows", "bad_kinds", "pairs", "dup_responses", "chars")} | {"near_dups": len(truth["near_dups"])}
        print(f"[n={n}] corpus: {truth['lines']} lines ({truth['bad_rows']} bad: {truth['bad_kinds']}), {len(truth['near_dups'])} near-duplicate "
              f"documents, {truth['pairs']} pairs ({truth['dup_responses']} repeated responses); mean chars en {truth['chars']['en']:.0f}, "
              f"ja {truth['chars']['ja']:.0f}; {time.perf_counter() - t0:.1f} s", flush=True)
        done = set()
        for step in steps:
            missing = [x for x in NEEDS[step] if x not in done]
            if missing:
                print(f"[n={n}] {step}: skipped (needs {', '.join(missing)})", flush=True); failures.append(f"n={n} {step}: needs {missing}"); continue
            parts, err = run_child(step, d, args)
            if parts is None:
                print(f"[n={n}] {step}: FAILED: {err}", flush=True); failures.append(f"n={n} {step}: {err}"); continue
            done.add(step)
            for p in parts:
                rows.append({"step": p["part"], "N": n, **{k: v for k, v in p.items() if k != "part"}})
                print(f"[n={n}] {p['part']}: {p['seconds']:.2f} s, peak {p['peak_mb']:.0f} MB (+{p['increase_mb']:.0f}); {p['note']}", flush=True)
                if p.get("leak"): failures.append(f"n={n} {p['part']}: {p['note']}")
        if tmp: shutil.rmtree(d, ignore_errors=True)  # up to ~0.4 GB per 100k documents
    # table
    print("\n| step | N | seconds | peak RSS MB | RSS increase MB | notes |\n|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['step']} | {r['N']:,} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {r['increase_mb']:.0f} | {r['note']} |")
    exps, flagged = {}, []
    print("\n| step | time exponent | RSS-increase exponent | flag |\n|---|---:|---:|---|")
    for name in dict.fromkeys(r["step"] for r in rows):
        rs = [r for r in rows if r["step"] == name]
        xs = [r["N"] for r in rs]
        if name == "score sample":  # fixed-size sample: the per-text time; scoring all N costs N x that
            per = slope(xs, [r["per_text_ms"] for r in rs])
            entries = [("score: per text (sample)", per, None), ("score: all N texts (N x per text)", None if per is None else per + 1, None)]
            exps["score sample"] = {"time": per, "rss": slope(xs, [r["increase_mb"] for r in rs])}
            exps["score all N"] = {"time": None if per is None else per + 1, "rss": None}
        else:
            t = slope(xs, [r["seconds"] for r in rs])
            m = slope(xs, [r["increase_mb"] for r in rs]) if max(r["increase_mb"] for r in rs) >= MIN_MB else None  # below: allocator noise
            entries = [(name, t, m)]; exps[name] = {"time": t, "rss": m}
        big = max(rs, key=lambda r: r["N"])
        for label, t, m in entries:
            flag = ", ".join(f"SUPER-LINEAR ({w})" for w, e in (("time", t), ("memory", m)) if e is not None and e > SUPER_LINEAR)
            if flag and big["seconds"] < MIN_SECONDS and "memory" not in flag: flag = f"({flag}: under {MIN_SECONDS} s, noise)"
            if flag and not flag.startswith("("): flagged.append(f"{label} {flag.replace('SUPER-LINEAR ', '')}")
            f = lambda e: "n/a" if e is None else f"{e:.2f}"
            print(f"| {label} | {f(t)} | {f(m)} | {flag} |")
    if len(sizes) < 2: print("(one size: no exponents)")
    print(f"\nSUPER-LINEAR: {'; '.join(flagged) if flagged else 'none'}")
    print(f"sizes {sizes}; steps pinned to one core; exponent = least-squares slope of log(value) on log(N); flag above {SUPER_LINEAR}")
    if args.json:
        Path(args.json).write_text(json.dumps({"sizes": sizes, "seed": args.seed, "corpora": corpora, "rows": rows, "exponents": exps,
                                               "failures": failures, "settings": {k: getattr(args, k) for k in ("score_sample", "qubo_k", "qubo_solver", "qubo_time_limit")}}, indent=1))
    if tmp: tmp.cleanup()
    if failures:
        print("FAILURES:\n  " + "\n  ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
