"""Web ingest: HTML pages and WARC files as corpus rows (see docs/web-ingest.md).

decode    page bytes -> text (declared charset, UTF-8, GB18030; never a lossy guess)
warc      streaming WARC records (fastwarc) with offsets, resynchronising after a broken one
extract   one page -> main text (trafilatura), title, author, URL, site, date + method, lang
signals   likes / comments / dates from JSON-LD, microdata and meta tags
sites     a user's CSS-selector map per site (`--signals sites.yaml`)
script    opencc traditional -> simplified, language identification (py3langid)
quality   cheap Chinese-aware pre-filters (Gopher / FineWeb style), thresholds in config
rows      HTML / WARC files as rows for the one row reader (`readers.read_rows`)
stats     what each filter would remove (`construct ingest --stats`)
ray_ingest  pages extracted and hashed on Ray workers, decided and stored on the driver
"""
