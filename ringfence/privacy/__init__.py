"""Privacy: what is kept and for how long, the purge, deletion and export of one person's data, and
the Markdown disclosure generated from the declarations.

- :mod:`~ringfence.personal_data`: ``App.personal_data(...)``, the app's own records;
- :mod:`~ringfence.privacy.retention`: the retention table (every kind of stored data);
- :mod:`~ringfence.privacy.purge`: one purge pass, and the in-process schedule;
- :mod:`~ringfence.privacy.subjects`: delete or export everything held about one subject;
- :mod:`~ringfence.privacy.disclosure`: ``ringfence privacy``'s Markdown;
- :mod:`~ringfence.cli.privacy`: ``ringfence purge``, ``ringfence user …``, ``ringfence privacy``.
"""
