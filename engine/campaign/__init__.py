"""Field campaigns: folders of recorder files (AudioMoth, Song Meter, GUANO) with sites and imagery, read
into one table of recordings with positions and times. Torch-free.

    from engine.campaign import load_campaign
    campaign = load_campaign("CAMPAIGN")
    for site, recordings in campaign.by_site().items(): ...
"""

from engine.campaign.table import (
    FORMAT,
    VERSION,
    Campaign,
    CampaignRecording,
    Site,
    is_campaign,
    load_campaign,
    load_skipped,
    write_campaign,
)

__all__ = ["FORMAT", "VERSION", "Campaign", "CampaignRecording", "Site", "is_campaign", "load_campaign",
           "load_skipped", "write_campaign"]
